"""Impact analysis recovers planted effects from confounded observational data, and says
so honestly when there is nothing to find."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from integration_signals.scoring.impact import (
    Design,
    ImpactError,
    ImpactRequest,
    adopters,
    analyze,
    band_for,
    default_as_of,
    estimate,
)
from tests.scoring.synth import AS_OF, CONFIG, World, confounded_world


def request(outcome: str = "churned", **kw) -> ImpactRequest:  # type: ignore[no-untyped-def]
    req = ImpactRequest.from_config(CONFIG.impact, "snowflake", outcome, as_of=AS_OF)
    return replace(req, **kw)


@pytest.fixture
def planted(engine: Engine) -> Engine:
    """Adoption confounded by size and plan; adopting lowers churn by 10 points and
    raises expansion MRR by $60."""
    confounded_world(effect=-0.10, expansion_effect=60.0, seed=1).load(engine)
    return engine


def test_naive_difference_is_biased_and_matched_lift_recovers_the_planted_effect(planted):
    r = analyze(planted, CONFIG, request())
    lo, hi = r["lift_ci95"]
    assert lo <= -10.0 <= hi, r
    naive_lo, naive_hi = r["naive_lift_ci95"]
    assert naive_hi < -10.0, "big, loyal accounts adopt more: the naive gap overstates"
    assert r["naive_lift"] < r["lift"]
    assert r["band"] in ("strong", "critical") and r["measurable"]
    assert r["unit"] == "pts" and r["outcome_kind"] == "rate"


def test_a_zero_effect_is_negligible_with_an_interval_covering_zero(engine):
    confounded_world(effect=0.0, seed=1).load(engine)
    r = analyze(engine, CONFIG, request())
    assert r["lift_ci95"][0] <= 0.0 <= r["lift_ci95"][1]
    assert r["band"] == "negligible" and not r["measurable"]
    assert "no measurable effect" in r["verdict"]
    assert r["naive_lift_ci95"][1] < 0.0, "unmatched, the same data shows a spurious effect"


def test_balance_improves_after_matching(planted):
    balance = {b["covariate"]: b for b in analyze(planted, CONFIG, request())["balance"]}
    assert set(balance) == {"segment", "plan", "industry", "employees", "mrr", "tenure"}
    for confounder in ("segment", "plan", "employees", "mrr"):
        before, after = balance[confounder]["smd_before"], balance[confounder]["smd_after"]
        assert abs(before) > 0.3 and abs(after) < abs(before) / 2, balance[confounder]
    assert balance["segment"]["smd_after"] == 0.0  # exact matching balances exactly


def test_same_seed_same_result_and_another_seed_another_interval(planted):
    first = analyze(planted, CONFIG, request(seed=11))
    assert analyze(planted, CONFIG, request(seed=11)) == first
    other = analyze(planted, CONFIG, request(seed=12))
    assert other["lift"] == first["lift"]  # the match itself is not random
    assert other["lift_ci95"] != first["lift_ci95"]


def test_numeric_outcome_is_reported_in_its_own_units(planted):
    r = analyze(planted, CONFIG, request("expansion_mrr"))
    assert r["unit"] == "outcome units" and r["outcome_kind"] == "number"
    assert r["lift_ci95"][0] <= 60.0 <= r["lift_ci95"][1]
    assert r["band_basis"] == "percent of the control mean"


def test_installs_alone_two_days_of_use_or_use_after_as_of_are_not_adoption(engine):
    w = World(
        accounts=[
            {"account_id": a, "segment": "smb", "created_at": "2025-01-01"}
            for a in ("used", "installed", "two", "late", "failed")
        ]
    )
    w.syncs("used", "snowflake", [-9, -5, -1])
    w.install("installed", "snowflake", -20)
    w.syncs("two", "snowflake", [-3, -3, -2])
    w.syncs("late", "snowflake", [-2, -1, 1])
    w.syncs("failed", "snowflake", [-5, -4, -3], ok=False)
    w.load(engine)
    assert adopters(engine, "snowflake", as_of=AS_OF) == {"used"}
    assert adopters(engine, "snowflake", as_of=AS_OF + timedelta(days=2)) == {"used", "late"}


def test_accounts_churned_before_as_of_or_created_after_are_not_in_the_population(engine):
    w = confounded_world(n=60, seed=3)
    w.accounts.append({"account_id": "gone", "churned_at": "2026-01-01T00:00:00Z"})
    w.accounts.append({"account_id": "new", "created_at": "2026-08-01T00:00:00Z"})
    w.load(engine)
    r = analyze(engine, CONFIG, request(min_adopters=2, bootstrap=50))
    assert r["excluded"]["churned_before_as_of"] == 1
    assert r["excluded"]["created_after_as_of"] == 1
    assert r["population"] == 60


@pytest.mark.parametrize(
    ("points", "band"),
    [
        (0.0, "negligible"),
        (-0.99, "negligible"),
        (1.0, "modest"),
        (-3.0, "modest"),
        (3.5, "strong"),
        (-8.0, "strong"),
        (8.01, "critical"),
        (-25.0, "critical"),
    ],
    ids=["zero", "under-1", "1", "minus-3", "3.5", "minus-8", "over-8", "minus-25"],
)
def test_bands_follow_the_seed(points: float, band: str):
    assert band_for(points) == band


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outcome": "segment"}, "is text"),
        ({"outcome": "bogus"}, "not an account field or trait"),
        ({"near": ("industry",)}, "match on it with --exact"),
        ({"exact": ("colour",)}, "not an account field or trait"),
        ({"integration": "nope"}, "unknown integration"),
    ],
    ids=["text-outcome", "unknown-outcome", "text-near", "unknown-exact", "unknown-integration"],
)
def test_bad_requests_say_what_to_fix(planted, change, message):
    with pytest.raises(ImpactError, match=message):
        analyze(planted, CONFIG, request(**change))


def test_traits_work_as_covariates_and_outcomes(planted):
    r = analyze(planted, CONFIG, request("renewed", near=("employees", "nps")))
    assert [b["covariate"] for b in r["balance"]][-1] == "nps"
    assert r["lift_ci95"][0] <= 10.0 <= r["lift_ci95"][1]  # renewal is 1 - churn here


def test_default_as_of_leaves_the_outcome_window_after_it():
    assert default_as_of(CONFIG.impact, AS_OF) == AS_OF - timedelta(days=90)


def test_cli_reports_one_integration_with_the_issue_keys(cli, db_url):
    from integration_signals.store.engine import make_engine

    confounded_world(n=400, seed=2).load(make_engine(db_url))
    result = cli(
        "impact",
        "snowflake",
        "--outcome",
        "churned",
        "--as-of",
        "2026-06-01",
        "--seed",
        "3",
        "--exact",
        "segment,plan",
        "--near",
        "employees",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    for key in (
        "integration",
        "outcome",
        "adopters",
        "controls",
        "adopter_mean",
        "control_mean",
        "lift",
        "lift_ci95",
        "naive_lift",
        "band",
        "balance",
    ):
        assert key in data
    assert [b["covariate"] for b in data["balance"]] == ["segment", "plan", "employees"]
    assert {"covariate", "smd_before", "smd_after"} <= set(data["balance"][0])
    assert "correlational" in data["caveat"].lower()
    human = cli("impact", "snowflake", "--outcome", "churned", "--as-of", "2026-06-01")
    assert human.exit_code == 0 and "lift" in human.stdout and "naive" in human.stdout


def test_cli_all_ranks_every_integration_and_flags_no_measurable_effect(cli, db_url):
    from integration_signals.store.engine import make_engine

    confounded_world(n=400, effect=-0.25, seed=2).load(make_engine(db_url))
    result = cli("impact", "--all", "--outcome", "churned", "--as-of", "2026-06-01", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["integrations"]
    assert rows[0]["integration"] == "snowflake" and not rows[0]["no_measurable_effect"]
    zendesk = next(r for r in rows if r["integration"] == "zendesk")
    assert zendesk["no_measurable_effect"] and "question continued investment" in zendesk["flag"]
    assert len(rows) == len(CONFIG.integrations)


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["impact", "--outcome", "churned"], 2, "INTEGRATION or --all"),
        (["impact", "snowflake", "--all", "--outcome", "churned"], 2, "INTEGRATION or --all"),
        (["impact", "nope", "--outcome", "churned"], 1, "unknown integration"),
        (["impact", "snowflake", "--outcome", "plan"], 1, "is text"),
    ],
    ids=["neither", "both", "unknown", "text-outcome"],
)
def test_cli_errors_are_one_line(cli, args, code, text):
    result = cli(*args)
    assert result.exit_code == code
    assert text in result.stderr and len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- properties of the estimator

_cells = st.integers(min_value=1, max_value=4)


@st.composite
def _designs(draw):  # type: ignore[no-untyped-def]
    """Random small designs whose outcome depends only on the exact cell."""
    n = draw(st.integers(min_value=8, max_value=60))
    k = draw(_cells)
    cells = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    treated = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    level = np.array(draw(st.lists(st.floats(-5, 5), min_size=k, max_size=k)))
    near = np.array(draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n)))[:, None]
    return Design(
        treated=treated,
        y=level[cells],
        cells=cells.astype(np.int64),
        near=near,
        exact_values={"cell": cells.astype(str)},
        near_raw={"x": near[:, 0]},
    )


@settings(max_examples=40, deadline=None)
@given(design=_designs(), shift=st.floats(-100, 100), seed=st.integers(0, 2**16))
def test_an_outcome_explained_by_the_exact_cells_gives_zero_lift_whatever_the_shift(
    design, shift, seed
):
    est = estimate(design, neighbors=2, bootstrap=50, seed=seed)
    if est.matched_adopters == 0:
        return
    assert est.lift == pytest.approx(0.0, abs=1e-9)
    assert est.lift_ci[0] == pytest.approx(0.0, abs=1e-9)
    assert est.lift_ci[1] == pytest.approx(0.0, abs=1e-9)
    shifted = replace(design, y=design.y + shift)
    assert estimate(shifted, neighbors=2, bootstrap=50, seed=seed).lift == pytest.approx(
        0.0, abs=1e-6
    )
    assert all(b["smd_after"] == 0.0 for b in est.balance if b["covariate"] == "cell")
