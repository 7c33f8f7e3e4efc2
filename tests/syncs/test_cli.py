"""`signals sync` as a user meets it: credentials, dry runs without them, history, the
demo's CRM preview, and a run killed mid-way that the next run finishes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from integration_signals.cli.demo_cycle import crm_preview
from integration_signals.cli.runtime import Runtime
from integration_signals.config import Settings
from integration_signals.store import models
from tests.fakes.hubspot import BATCH_UPDATE, FakeHubSpot, Fault
from tests.syncs.conftest import NOW, TOKEN, hubspot_rows, seed_scores

ROOT = Path(__file__).resolve().parents[2]


def test_without_credentials_a_sync_fails_in_one_line_naming_what_to_set(cli, engine):
    seed_scores(engine, hubspot_rows(2))
    result = cli("sync", "hubspot")
    assert result.exit_code == 1
    assert "HUBSPOT_ACCESS_TOKEN" in result.stderr and "--dry-run" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    sf = cli("sync", "salesforce", "--json")
    assert sf.exit_code == 1 and json.loads(sf.stdout)["status"] == "failed"


def test_a_dry_run_without_credentials_plans_from_crm_ids_alone(cli, engine):
    seed_scores(
        engine,
        [
            {"account_id": "acme", "salesforce_id": "001ACME00000000001", "score": 88},
            {"account_id": "beta", "domain": "beta.io"},
        ],
    )
    result = cli("sync", "salesforce", "--dry-run", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["planned"] == 1 and data["api_calls"] == 0
    assert data["changes"][0]["fields"]["Integration_Health_Score__c"] == {"old": None, "new": "88"}
    assert data["unmatched_accounts"] == [
        {
            "account_id": "beta",
            "reason": "no salesforce_id; matching by domain beta.io needs Salesforce credentials",
        }
    ]


def test_every_run_is_recorded_in_the_history(cli, engine, hubspot, hubspot_env):
    seed_scores(engine, hubspot_rows(3))
    for r in hubspot_rows(3):
        hubspot.add_company(r["hubspot_id"])
    cli("sync", "hubspot", "--dry-run", env=hubspot_env)
    cli("sync", "hubspot", env=hubspot_env)
    cli("sync", "salesforce")  # no credentials: a failed run, recorded too
    runs = json.loads(cli("sync", "history", "--json").stdout)["runs"]
    assert [(r["destination"], r["status"], r["dry_run"]) for r in runs] == [
        ("salesforce", "failed", False),
        ("hubspot", "ok", False),
        ("hubspot", "dry_run", True),
    ]
    assert runs[1]["written"] == 3 and runs[1]["api_calls"] == 1
    only = json.loads(cli("sync", "history", "--destination", "hubspot", "--json").stdout)["runs"]
    assert len(only) == 2
    human = cli("sync", "history").stdout
    assert "hubspot ok: planned 3 written 3 unchanged 0 failed 0" in human


def test_the_demo_preview_shows_acmes_planned_fields_without_touching_a_crm(
    engine, db_url, monkeypatch
):
    monkeypatch.setenv("SIGNALS_DATABASE_URL", db_url)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-must-not-be-used")
    monkeypatch.setenv("HUBSPOT_API_URL", "http://127.0.0.1:9")  # nothing listens there
    seed_scores(
        engine,
        [
            {
                "account_id": "acme",
                "salesforce_id": "001ACME00000000001",
                "hubspot_id": "90001",
                "score": 88,
                "segments": ["expansion-ready"],
            },
            {"account_id": "solo", "domain": "solo.dev"},
        ],
    )
    preview = crm_preview(Runtime(settings=Settings()), now=NOW)
    hub = preview["hubspot"]
    assert hub["planned"] == 1 and hub["unmatched"] == 1
    assert hub["acme"]["fields"]["expansion_ready"] == {"old": None, "new": "true"}
    assert preview["salesforce"]["acme"]["fields"]["Integration_Health_Score__c"]["new"] == "88"
    with engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(models.SyncLedger.__table__)).scalar()
            == 0
        )


def confirmed(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count(func.distinct(models.SyncLedger.record_id)))).scalar()


def test_a_run_killed_mid_way_is_finished_by_the_next_with_no_record_written_twice(
    cli, engine, db_url, hubspot_env, tmp_path: Path
):
    fake = FakeHubSpot(token=TOKEN)
    fake.start()
    try:
        rows = hubspot_rows(500)
        for r in rows:
            fake.add_company(r["hubspot_id"])
        seed_scores(engine, rows)
        hold = threading.Event()
        # Two batches land; every later one hangs (up to 4 are in flight at once).
        fake.faults.append(Fault(BATCH_UPDATE, hold=hold, after=2, times=100))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT)),
            "SIGNALS_DATABASE_URL": db_url,
            "SIGNALS_CONFIG": hubspot_env["SIGNALS_CONFIG"],
            "HUBSPOT_ACCESS_TOKEN": TOKEN,
            "HUBSPOT_API_URL": fake.url,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "integration_signals", "sync", "hubspot", "--json"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (fake.batch_calls() < 6 or confirmed(engine) < 200):
            time.sleep(0.02)
        assert fake.batch_calls() >= 6 and confirmed(engine) == 200
        proc.kill()  # SIGKILL with four batches in flight
        proc.wait(10)
        fake.faults.clear()
        hold.set()
        assert sum(fake.writes.values()) == 200

        with engine.connect() as conn:
            killed = conn.execute(select(models.SyncRun.status, models.SyncRun.written)).one()
        assert confirmed(engine) == 200 and tuple(killed) == ("running", 200)

        result = cli("sync", "hubspot", "--json", env={**hubspot_env, "HUBSPOT_API_URL": fake.url})
        data = json.loads(result.stdout)
        assert result.exit_code == 0 and (data["planned"], data["written"]) == (300, 300)
        assert len(fake.writes) == 500 and set(fake.writes.values()) == {1}
        runs = json.loads(cli("sync", "history", "--json").stdout)["runs"]
        assert [(r["status"], r["written"]) for r in runs] == [("ok", 300), ("interrupted", 200)]
        for r in rows:
            assert fake.companies[r["hubspot_id"]]["integration_health_score"] == str(r["score"])
    finally:
        fake.stop()
