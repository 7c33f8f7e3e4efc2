"""Kaplan-Meier retention agrees with lifelines; lifetimes and time-to-value follow
the rules of SPEC section 4 in whole UTC days."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest
from lifelines import KaplanMeierFitter

from integration_signals.config import load_config
from integration_signals.scoring.facts import ConnectionFacts, IntegrationInfo
from integration_signals.scoring.funnel import funnel_rows
from integration_signals.scoring.retention import (
    kaplan_meier,
    lifetime_of,
    quantile_day,
    retained_at,
    survival_at,
    ttv_rows,
)

DAILY = IntegrationInfo("salesforce", "Salesforce", "crm", "daily", 7)
AS_OF = date(2026, 11, 20)


def _generated(seed: int, n: int) -> tuple[list[int], list[bool]]:
    rng = random.Random(seed)
    durations, ended = [], []
    for _ in range(n):
        life = int(rng.expovariate(1 / 40))
        follow = rng.randint(0, 150)  # censoring: observed for this long only
        durations.append(min(life, follow))
        ended.append(life <= follow)
    return durations, ended


@pytest.mark.parametrize("seed", [1, 2, 3, 4], ids=lambda s: f"seed {s}")
def test_kaplan_meier_equals_lifelines_on_generated_data_with_censoring(seed):
    durations, ended = _generated(seed, 400)
    assert 0 < sum(ended) < len(ended)
    ours = kaplan_meier(durations, ended)
    kmf = KaplanMeierFitter().fit(durations, event_observed=ended)
    ref = kmf.survival_function_["KM_estimate"]
    assert [p.day for p in ours] == [int(t) for t in ref.index]
    for point in ours:
        assert point.retained == pytest.approx(ref.loc[point.day], rel=1e-12, abs=1e-12)
    table = kmf.event_table
    for point in ours:
        assert point.at_risk == table.loc[point.day, "at_risk"]
    for day in (7, 30, 60, 90, 3.5, 500):
        assert survival_at(ours, day) == pytest.approx(
            float(kmf.survival_function_at_times(day).iloc[0]), rel=1e-12
        )
    assert quantile_day(ours, 0.5) == (
        None if kmf.median_survival_time_ == float("inf") else kmf.median_survival_time_
    )
    fractions = retained_at(ours)
    assert set(fractions) == {"7", "30", "60", "90"}
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in fractions.values())


def _conn(**kw) -> ConnectionFacts:
    f = ConnectionFacts("c", "a", DAILY)
    for key, value in kw.items():
        setattr(f, key, value)
    f.state = kw.get("state", "active")
    return f


def _at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 8, tzinfo=UTC)


def _days(start: date, end: date, step: int = 1) -> list[date]:
    return [date.fromordinal(o) for o in range(start.toordinal(), end.toordinal() + 1, step)]


@pytest.mark.parametrize(
    ("success_days", "uninstalled", "expect"),
    [
        (_days(date(2026, 9, 1), AS_OF), None, (80, False)),  # active at as-of: censored
        (_days(date(2026, 9, 1), date(2026, 10, 1)), None, (30, True)),  # stopped
        (
            _days(date(2026, 9, 1), date(2026, 9, 10)) + _days(date(2026, 9, 20), AS_OF),
            None,
            (9, True),  # an 10-day gap > 7-day window ends it, whatever follows
        ),
        (_days(date(2026, 9, 1), AS_OF, 7), None, (80, False)),  # every 7 days: within window
        (_days(date(2026, 9, 1), date(2026, 11, 15)), date(2026, 10, 5), (34, True)),
        (_days(date(2026, 9, 1), date(2026, 11, 13)), None, (73, True)),  # 7 days: window elapsed
        (_days(date(2026, 9, 1), date(2026, 11, 14)), None, (80, False)),  # 6 days: still inside
    ],
    ids=["censored", "ended", "gap", "weekly cadence", "uninstalled", "window elapsed", "inside"],
)
def test_lifetime_rules(success_days, uninstalled, expect):
    f = _conn(
        activated_at=_at(success_days[0]),
        installed_at=_at(success_days[0]),
        uninstalled_at=_at(uninstalled) if uninstalled else None,
        state="uninstalled" if uninstalled else "active",
    )
    life = lifetime_of(f, success_days, AS_OF, "smb")
    assert (life.duration, life.ended) == expect


def test_time_to_value_censors_installs_not_yet_activated():
    conns = []
    for i, ttv in enumerate([0, 1, 1, 2, 3, 5, None, None, 30]):
        installed = date(2026, 10, 1)
        f = ConnectionFacts(f"c{i}", "a", DAILY, installed_at=_at(installed))
        if ttv is not None:
            f.activated_at = _at(date.fromordinal(installed.toordinal() + ttv))
        conns.append(f)
    (row,) = ttv_rows(conns, AS_OF)
    assert (row["installs"], row["activated"], row["censored"]) == (9, 7, 2)
    durations = [0, 1, 1, 2, 3, 5, 50, 50, 30]  # not yet activated: censored at 50 days
    kmf = KaplanMeierFitter().fit(durations, event_observed=[True] * 6 + [False, False, True])
    assert row["median_days"] == kmf.median_survival_time_ == 3
    assert row["p90_days"] is None  # 90% never activated within what was observed


def test_funnel_counts_states_apart_and_names_the_largest_drop():
    conns = []
    for i, state in enumerate(
        ["active"] * 4 + ["broken"] * 2 + ["idle"] * 3 + ["uninstalled"] + ["installed"] * 2
    ):
        f = ConnectionFacts(f"c{i}", "a", DAILY, installed_at=_at(date(2026, 6, 1)))
        if state != "installed":
            f.activated_at = _at(date(2026, 6, 2))
        f.state = state
        conns.append(f)
    (row,) = funnel_rows(conns, [])
    assert {
        k: row[k] for k in ("installed", "activated", "active", "broken", "idle", "uninstalled")
    } == {
        "installed": 12,
        "activated": 10,
        "active": 4,
        "broken": 2,
        "idle": 3,
        "uninstalled": 1,
    }
    assert row["largest_drop"]["from"] == "activated" and row["largest_drop"]["to"] == "active"
    assert row["largest_drop"]["lost"] == 6


def test_config_loads():
    assert load_config(None).scoring.onboarding_days == 90
