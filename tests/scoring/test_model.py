"""The outcome model learns which integration patterns go with churn, is validated on a
later snapshot than it learned from, and is stored in the database."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from integration_signals.scoring.model import (
    ModelError,
    churn_probabilities,
    load_model,
    report,
    train,
)
from tests.scoring.synth import CONFIG, NOW, World, iso

SHORT = CONFIG.model_copy(
    update={"impact": CONFIG.impact.model_copy(update={"horizon_days": 30, "pair_min_support": 5})}
)


def warehouse_world(n: int = 160, seed: int = 9) -> World:
    """Accounts that use Snowflake (with or without Slack) rarely churn; the rest often
    do, at times spread over the last 150 days. Usage runs until an account churns."""
    rng = random.Random(seed)
    w = World(origin=NOW - timedelta(hours=4))
    start = -150
    for i in range(n):
        aid = f"m{i:04d}"
        snowflake = rng.random() < 0.5
        churned = rng.random() < (0.12 if snowflake else 0.65)
        end_day = rng.randint(start + 40, -1) if churned else 0
        churn_at = NOW + timedelta(days=end_day)
        row = {
            "account_id": aid,
            "segment": rng.choice(("smb", "mid_market")),
            "plan": "pro",
            "mrr": 1000,
            "created_at": iso(NOW - timedelta(days=500)),
        }
        if churned:
            row["churned_at"] = iso(churn_at)
        w.accounts.append(row)
        used = (
            ["zendesk"]
            + (["snowflake"] if snowflake else [])
            + (["slack"] if rng.random() < 0.5 else [])
        )
        for integration in used:
            w.install(aid, integration, 0)
            days = list(range(start, end_day, 5))
            w.syncs(aid, integration, days)
    return w


@pytest.fixture
def trained(engine: Engine) -> tuple[Engine, dict]:
    warehouse_world().load(engine)
    return engine, train(engine, SHORT, now=NOW)


def test_model_is_validated_on_a_later_snapshot_and_finds_the_pattern(trained):
    _, r = trained
    assert r["test_snapshot"] > max(r["train_snapshots"])  # a time split
    assert r["auc"] > 0.7
    assert r["brier"] < r["brier_baseline"]
    features = {f["feature"]: f for f in r["top_features"]}
    assert features["uses:snowflake"]["effect"] == "lowers churn"
    assert [f["feature"] for f in r["top_features"]][0] == "uses:snowflake"
    assert sum(c["accounts"] for c in r["calibration"]) == r["test_rows"]


def test_pairs_report_lift_with_support(trained):
    _, r = trained
    pairs = {tuple(p["pair"]): p for p in r["pairs"]}
    assert ("snowflake", "zendesk") in pairs
    best = pairs[("snowflake", "zendesk")]
    assert (
        best["support"] >= 5
        and best["lift"] > 1.0
        and best["retention"] > best["baseline_retention"]
    )
    assert all(p["support"] >= 5 for p in r["pairs"])


def test_model_is_stored_in_the_database_and_applied_to_current_customers(trained):
    engine, r = trained
    model = load_model(engine)
    assert model is not None and model["report"]["auc"] == r["auc"]
    probs = churn_probabilities(engine, SHORT, as_of=NOW)
    assert probs and all(0.0 <= p <= 1.0 for p in probs.values())
    data = report(engine, SHORT, now=NOW, top=5)
    assert len(data["highest_churn_probability"]) == 5
    assert data["stale_config"] is False


def test_training_without_churn_history_says_what_to_do(engine: Engine):
    w = warehouse_world(n=30)
    for row in w.accounts:
        row.pop("churned_at", None)
    w.load(engine)
    with pytest.raises(ModelError, match="both churned and retained"):
        train(engine, SHORT, now=NOW)


def test_cli_model_train_and_report(cli, db_url, tmp_path):
    from integration_signals.store.engine import make_engine

    warehouse_world().load(make_engine(db_url))
    assert cli("model", "report").exit_code == 1  # nothing trained yet
    cfg = tmp_path / "short.toml"
    cfg.write_text("[impact]\nhorizon_days = 30\npair_min_support = 5\n")
    env = {"SIGNALS_CONFIG": str(cfg)}
    trained = cli("model", "train", "--as-of", "2026-11-20", "--json", env=env)
    assert trained.exit_code == 0, trained.stderr
    assert json.loads(trained.stdout)["auc"] > 0.7
    shown = cli("model", "report", "--as-of", "2026-11-20", "--json", env=env)
    assert shown.exit_code == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert {"auc", "calibration", "top_features", "pairs", "highest_churn_probability"} <= set(data)
    human = cli("model", "report", "--as-of", "2026-11-20", env=env)
    assert human.exit_code == 0 and "AUC" in human.stdout
