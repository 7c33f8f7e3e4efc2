"""`signals signals` and `signals tasks` report with the issue's JSON keys; the task
commands act and refuse in one line."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from integration_signals.scoring.signals import evaluate_signals
from integration_signals.store.models import AccountScore, ScoreHistory
from tests.scoring.world import AS_OF, CONFIG, TODAY, World

WHEN = AS_OF.isoformat()


def _world(engine: Engine) -> None:
    w = World(engine)
    w.account("acme", csm="dana@example.com")
    w.account("beta", csm="lee@example.com")
    w.syncs(TODAY - timedelta(days=1), ok=1, failed=5, account="acme")
    w.syncs(TODAY - timedelta(days=20), account="beta")
    w.syncs(TODAY - timedelta(days=2), account="beta", integration="hubspot")
    w.event("auth.expired", AS_OF - timedelta(hours=3), "beta", "hubspot")
    w.ingest()
    evaluate_signals(engine, CONFIG, as_of=AS_OF)


def test_signals_lists_open_and_recently_resolved_episodes(cli, engine: Engine):
    _world(engine)
    w = World(engine)
    w.event("auth.restored", AS_OF + timedelta(hours=1), "beta", "hubspot")
    w.ingest(now=AS_OF + timedelta(hours=2))
    evaluate_signals(engine, CONFIG, as_of=AS_OF + timedelta(hours=2))
    result = cli("signals", "--json", "--as-of", (AS_OF + timedelta(hours=3)).isoformat())
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    items = {(i["account_id"], i["kind"]): i for i in data["signals"]}
    assert set(items) == {
        ("acme", "health_degradation"),
        ("beta", "abandonment"),
        ("beta", "auth_expired"),
    }
    for item in data["signals"]:
        assert {"id", "account_id", "kind", "fired_at", "resolved_at", "details"} <= set(item)
    assert items[("beta", "auth_expired")]["resolved_at"] is not None
    assert items[("acme", "health_degradation")]["resolved_at"] is None
    # 31 days on, the resolved one is no longer recent
    later = cli("signals", "--json", "--as-of", (AS_OF + timedelta(days=31)).isoformat())
    kinds = {i["kind"] for i in json.loads(later.stdout)["signals"]}
    assert "auth_expired" not in kinds and "health_degradation" in kinds


def test_tasks_lists_every_status_unless_narrowed(cli, engine: Engine):
    _world(engine)
    data = json.loads(cli("tasks", "--json", "--as-of", WHEN).stdout)
    assert len(data["tasks"]) == 3
    for item in data["tasks"]:
        assert {"id", "account_id", "signal_kind", "title", "owner", "due_at", "status"} <= set(
            item
        )
    lee = json.loads(cli("tasks", "--owner", "lee@example.com", "--json", "--as-of", WHEN).stdout)
    assert {t["account_id"] for t in lee["tasks"]} == {"beta"}
    first = data["tasks"][0]["id"]
    assert cli("tasks", "done", str(first), "--by", "lee", "--as-of", WHEN).exit_code == 0
    done = json.loads(cli("tasks", "--status", "done", "--json", "--as-of", WHEN).stdout)
    assert [t["id"] for t in done["tasks"]] == [first]
    still_open = json.loads(cli("tasks", "--status", "open", "--json", "--as-of", WHEN).stdout)
    assert len(still_open["tasks"]) == 2
    bogus = cli("tasks", "--status", "bogus")
    assert bogus.exit_code == 2 and "not a task status" in bogus.stderr
    assert cli("signals", "--as-of", "yesterday-ish").exit_code == 2


def test_task_commands_act_and_refuse_in_one_line(cli, engine: Engine):
    _world(engine)
    task = json.loads(cli("tasks", "--json", "--as-of", WHEN).stdout)["tasks"][0]["id"]
    claimed = cli("tasks", "claim", str(task), "--by", "lee", "--json", "--as-of", WHEN)
    assert claimed.exit_code == 0
    assert json.loads(claimed.stdout)["status"] == "claimed"
    assert cli("tasks", "claim", str(task), "--by", "lee", "--as-of", WHEN).exit_code == 0
    refused = cli("tasks", "claim", str(task), "--by", "sam", "--as-of", WHEN)
    assert refused.exit_code == 1
    assert f"task {task} is already claimed by lee" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    snoozed = cli(
        "tasks", "snooze", str(task), "--by", "lee", "--days", "3", "--json", "--as-of", WHEN
    )
    data = json.loads(snoozed.stdout)
    assert data["status"] == "snoozed"
    assert data["snoozed_until"].startswith((AS_OF + timedelta(days=3)).date().isoformat())
    missing = cli("tasks", "done", "4242", "--by", "lee")
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    assert cli("tasks", "claim", str(task)).exit_code == 2  # --by is required


def test_score_runs_the_rules_and_stores_segments_with_the_score(cli, engine: Engine):
    w = World(engine)
    w.account("acme")
    w.syncs(TODAY - timedelta(days=1), ok=1, failed=5, account="acme")
    w.ingest()
    first = cli("score", "--json", "--as-of", WHEN)
    assert first.exit_code == 0, first.stderr
    data = json.loads(first.stdout)
    assert [f["kind"] for f in data["signals"]["fired"]] == ["health_degradation"]
    (acme,) = [a for a in data["accounts"] if a["account_id"] == "acme"]
    assert acme["segments"] == ["at-risk"]
    again = json.loads(cli("score", "--json", "--as-of", WHEN).stdout)
    assert again["signals"]["fired"] == [] and again["signals"]["tasks_created"] == 0
    tasks = json.loads(cli("tasks", "--json", "--as-of", WHEN).stdout)["tasks"]
    assert [t["signal_kind"] for t in tasks] == ["health_degradation"]


def _band_changes(engine: Engine, account_id: str, bands: list[tuple[Any, str]]) -> None:
    """Score history with ``bands`` (moment, band), the last one the current score."""
    rows = [
        {
            "account_id": account_id,
            "as_of": at,
            "scored_at": at,
            "score": {"healthy": 80, "watch": 55, "at_risk": 30}[band],
            "band": band,
            "stage": "scored",
        }
        for at, band in bands
    ]
    with engine.begin() as conn:
        conn.execute(ScoreHistory.__table__.insert(), rows)
        conn.execute(
            AccountScore.__table__.insert().values(
                **rows[-1], components={}, reason="-", segments=[], active_integrations=1
            )
        )


def test_tasks_and_signals_as_of_t_show_the_band_the_account_had_at_t(cli, engine: Engine):
    """Acme was on watch at T and is at risk now: a view of T says watch (score_history's
    newest row at or before T), a view of now says at risk; --band filters on the band
    then. Beta had no score yet at T: no band."""
    _world(engine)
    later = AS_OF + timedelta(days=2)
    _band_changes(
        engine,
        "acme",
        [
            (AS_OF - timedelta(days=5), "healthy"),
            (AS_OF - timedelta(hours=2), "watch"),
            (later, "at_risk"),
        ],
    )
    _band_changes(engine, "beta", [(later, "healthy")])
    then = (AS_OF + timedelta(hours=1)).isoformat()
    now = (later + timedelta(hours=1)).isoformat()

    def bands(*args: str) -> dict[str, set[Any]]:
        out: dict[str, set[Any]] = {}
        for item in json.loads(cli(*args, "--json").stdout)[args[0]]:
            out.setdefault(item["account_id"], set()).add(item["account_band"])
        return out

    assert bands("tasks", "--as-of", then) == {"acme": {"watch"}, "beta": {None}}
    assert bands("tasks", "--as-of", now) == {"acme": {"at_risk"}, "beta": {"healthy"}}
    assert set(bands("tasks", "--as-of", then, "--band", "watch")) == {"acme"}
    assert bands("tasks", "--as-of", then, "--band", "at_risk") == {}
    assert bands("signals", "--as-of", then) == {"acme": {"watch"}, "beta": {None}}
    assert bands("signals", "--as-of", now)["acme"] == {"at_risk"}
