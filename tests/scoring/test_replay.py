"""`signals replay`: what a live system evaluating at the end of each day would have
produced, rebuilt from the stored events; idempotent; closed history is never live work."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from integration_signals.schedules.pipeline import after_ingest
from integration_signals.scoring.evaluation import evaluate
from integration_signals.scoring.replay import REPLAY_ACTOR, day_end, replay
from integration_signals.store.engine import make_engine
from integration_signals.store.ingest import Ingestor, read_objects
from integration_signals.store.models import Signal, Task
from tests.scoring import replay_world as world
from tests.scoring.builders import CONFIG, import_accounts

LAST = world.START + timedelta(days=world.DAYS - 1)


def _live(engine) -> dict:  # type: ignore[no-untyped-def]
    """Ingest each day's events as they arrive, then `signals score --as-of` that day."""
    import_accounts(engine, world.accounts())
    per_day = {}
    for day, events in world.events_by_day().items():
        received = day_end(day) - timedelta(minutes=20)
        report = Ingestor(engine, CONFIG, now=received).ingest(
            read_objects(events), source=f"day-{day}"
        )
        after_ingest(engine, CONFIG, report, now=received)
        evaluate(engine, CONFIG, as_of=day_end(day))
        per_day[day] = world.segments(engine)
    return per_day


def _backfill_file(tmp_path: Path) -> Path:
    path = tmp_path / "history.jsonl"
    with path.open("wb") as out:
        for events in world.events_by_day().values():
            for event in events:
                out.write(orjson.dumps(event) + b"\n")
    return path


def test_replay_equals_a_live_system_evaluating_day_by_day(cli, engine, db_url, tmp_path):
    live_segments = _live(engine)
    with world.second_database(db_url, tmp_path) as other_url:
        env = {"SIGNALS_DATABASE_URL": other_url}
        other = make_engine(other_url)
        try:
            import_accounts(other, world.accounts())
            stored = cli("ingest", str(_backfill_file(tmp_path)), "--no-score", "--json", env=env)
            assert stored.exit_code == 0, stored.stderr
            assert json.loads(stored.stdout)["after_ingest"]["rescored"] is None
            assert world.episodes(other) == []  # store only: nothing evaluated
            result = cli("replay", "--from", str(world.START), "--to", str(LAST), "--json", env=env)
            assert result.exit_code == 0, result.stderr
            doc = json.loads(result.stdout)
            assert doc["days"] == world.DAYS

            live_episodes = world.episodes(engine)
            kinds = {(e[0], e[1]) for e in live_episodes}
            assert {
                ("deg", "health_degradation"),
                ("aband", "abandonment"),
                ("api", "api_limit_proximity"),
            } <= kinds
            abandon = [e for e in live_episodes if e[1] == "abandonment"]
            assert len(abandon) == 2 and abandon[0][4] is not None and abandon[1][4] is None
            degrade = [e for e in live_episodes if e[1] == "health_degradation"]
            assert len(degrade) == 1 and degrade[0][4] is not None  # healed

            assert world.episodes(other) == live_episodes
            assert world.score_days(other) == world.score_days(engine)
            assert world.final_scores(other) == world.final_scores(engine)
            assert doc["episodes"]["opened"] == len(live_episodes)
            assert doc["episodes"]["resolved"] == sum(1 for e in live_episodes if e[4])

            # segments per day, through the library's per-day hook (replaying again)
            replayed_segments = {}
            replay(
                other,
                CONFIG,
                start=world.START,
                end=LAST,
                on_day=lambda day: replayed_segments.__setitem__(day, world.segments(other)),
            )
            assert replayed_segments == live_segments
            assert world.episodes(other) == live_episodes
        finally:
            other.dispose()


def test_tasks_resolved_within_the_range_are_closed_unseen_and_open_ones_are_live_work(cli, engine):
    import_accounts(engine, world.accounts())
    for events in world.events_by_day().values():
        Ingestor(engine, CONFIG, now=day_end(LAST)).ingest(read_objects(events), source="b")
    report = replay(engine, CONFIG, start=world.START, end=LAST)
    s, t = Signal.__table__, Task.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.c.status, t.c.claimed_by, t.c.posted_at, s.c.resolved_at).select_from(
                t.join(s, s.c.id == t.c.signal_id)
            )
        ).all()
    closed = [r for r in rows if r.resolved_at is not None]
    live = [r for r in rows if r.resolved_at is None]
    assert closed and live
    assert all(r.status == "done" and r.claimed_by == REPLAY_ACTOR for r in closed)
    assert all(r.status != "done" and r.posted_at is None for r in live)
    assert (report.tasks_closed, report.tasks_live) == (len(closed), len(live))
    # the CRM sync's task list leaves closed history out
    from integration_signals.syncs.ledger import load_tasks

    with engine.connect() as conn:
        synced = load_tasks(conn, ["deg", "aband", "api"])
    assert all(task["status"] != "done" for task in synced)
    assert len(synced) == len(live)


@pytest.mark.parametrize("cut", [0, 25, 45], ids=["whole", "mid-degradation", "late"])
def test_replaying_again_from_any_day_rebuilds_the_same_rows(engine, cut):
    import_accounts(engine, world.accounts())
    for events in world.events_by_day().values():
        Ingestor(engine, CONFIG, now=day_end(LAST)).ingest(read_objects(events), source="b")
    replay(engine, CONFIG, start=world.START, end=LAST)
    before = (world.episodes(engine), world.score_days(engine), world.final_scores(engine))
    replay(engine, CONFIG, start=world.START + timedelta(days=cut), end=LAST)
    after = (world.episodes(engine), world.score_days(engine), world.final_scores(engine))
    assert after == before
