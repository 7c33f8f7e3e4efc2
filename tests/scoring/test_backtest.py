"""The backtest scores as of T with only what was known then, and measures the score
against churn in the horizon after T."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from sqlalchemy import Engine, func, select

from integration_signals.scoring.backtest import backtest
from integration_signals.store.models import AccountScore
from tests.scoring.synth import AS_OF, CONFIG, NOW, World, iso


def fading_world(n: int = 80, seed: int = 5) -> World:
    """Half the accounts use two integrations daily up to T and mostly stay; the other
    half stopped syncing weeks before T and mostly churn within 90 days after it."""
    rng = random.Random(seed)
    w = World()
    for i in range(n):
        aid = f"b{i:04d}"
        fading = i % 2 == 1
        churns = rng.random() < (0.7 if fading else 0.1)
        row = {
            "account_id": aid,
            "segment": "smb",
            "plan": "starter",
            "created_at": iso(AS_OF - timedelta(days=400)),
        }
        if churns:
            row["churned_at"] = iso(AS_OF + timedelta(days=rng.randint(5, 80)))
        w.accounts.append(row)
        for integration in ("salesforce", "slack"):
            w.install(aid, integration, -45)
            last = -25 if fading else 0
            w.syncs(aid, integration, list(range(-44, last)))
    return w


def test_band_and_score_predict_churn_and_the_report_says_how_well(engine: Engine):
    fading_world().load(engine)
    r = backtest(engine, CONFIG, as_of=AS_OF, horizon_days=90, now=NOW)
    assert r["accounts"] == 80 and r["complete"]
    assert r["auc"] > 0.65
    present = [b for b in r["bands"] if b["accounts"]]  # healthy, watch, at_risk order
    assert len(present) >= 2
    assert present[-1]["churn_rate"] > present[0]["churn_rate"] + 0.3
    assert r["band_order_holds"]
    assert r["config_version"] == CONFIG.version
    assert sum(b["accounts"] for b in r["bands"]) == 80


def test_backtest_uses_no_data_after_t_and_writes_no_scores(engine: Engine):
    w = fading_world()
    w.load(engine)
    before = backtest(engine, CONFIG, as_of=AS_OF, horizon_days=90, now=NOW)
    later = World()
    for i in range(80):
        aid = f"b{i:04d}"
        # After T: the fading accounts recover, the engaged ones break and uninstall,
        # and a new integration appears everywhere. None of it may move the backtest.
        later.syncs(aid, "salesforce", list(range(1, 30)), ok=i % 2 == 1)
        later.syncs(aid, "zendesk", list(range(2, 20)))
        later.events.append(
            {
                "event_id": f"{aid}-gone",
                "type": "integration.uninstalled" if i % 2 == 0 else "auth.expired",
                "occurred_at": iso(AS_OF + timedelta(days=3)),
                "account_id": aid,
                "integration": "slack",
                "connection_id": f"{aid}-slack",
            }
        )
    later.load(engine)
    after = backtest(engine, CONFIG, as_of=AS_OF, horizon_days=90, now=NOW)
    assert after == before
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AccountScore)).scalar_one() == 0
    # ... while a backtest as of a later day does see the new data.
    moved = backtest(engine, CONFIG, as_of=AS_OF + timedelta(days=30), horizon_days=60, now=NOW)
    assert moved["bands"] != before["bands"]


def test_an_unfinished_window_is_reported_as_incomplete(engine: Engine):
    fading_world(n=10).load(engine)
    r = backtest(engine, CONFIG, as_of=NOW - timedelta(days=10), horizon_days=90, now=NOW)
    assert not r["complete"]


def test_cli_backtest_json_and_horizon_parsing(cli, db_url):
    from integration_signals.store.engine import make_engine

    fading_world(n=20).load(make_engine(db_url))
    result = cli("backtest", "--as-of", "2026-06-01", "--horizon", "90d", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["horizon_days"] == 90 and data["accounts"] == 20
    assert {"band", "accounts", "churned", "churn_rate"} <= set(data["bands"][0])
    assert cli("backtest", "--as-of", "2026-06-01", "--horizon", "12w", "--json").exit_code == 0
    bad = cli("backtest", "--as-of", "2026-06-01", "--horizon", "soon")
    assert bad.exit_code == 2 and "--horizon" in bad.stderr
    human = cli("backtest", "--as-of", "2026-06-01")
    assert human.exit_code == 0 and "AUC" in human.stdout
