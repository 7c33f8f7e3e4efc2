"""Once per tick: the job lock, the tick claim, and recovery from dead runners."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from integration_signals.config import load_config
from integration_signals.schedules.jobs import JobSpec, next_tick, tick_of
from integration_signals.schedules.locks import (
    ABANDONED,
    FAILED,
    OK,
    RUNNING,
    AlreadyServing,
    InstanceLock,
    TickLocks,
)
from integration_signals.store.engine import make_engine
from integration_signals.store.models import JobRun
from tests.schedules.conftest import needs_pg

TICK = datetime(2026, 11, 22, 8, 15, tzinfo=UTC)
CONFIG = load_config(None)


def rows(engine: Engine) -> list[tuple[str, datetime, str, str | None]]:
    t = JobRun.__table__
    with engine.connect() as conn:
        return [
            (r.job_id, r.scheduled_at.replace(tzinfo=UTC), r.status, r.host)
            for r in conn.execute(select(t).order_by(t.c.id))
        ]


def test_a_tick_is_claimed_once(engine: Engine) -> None:
    a, b = TickLocks(engine, host="a:1"), TickLocks(engine, host="b:2")
    # (claims are made holding the job lock, so a and b never claim at the same time)
    claim = a.claim("score", TICK)
    assert claim is not None
    a.finish(claim.run_id, OK)
    assert b.claim("score", TICK) is None
    assert b.claim("score", TICK + timedelta(minutes=15)) is not None


def test_a_run_left_running_is_abandoned_and_its_tick_run_again(engine: Engine) -> None:
    dead, alive = TickLocks(engine, host="dead:1"), TickLocks(engine, host="alive:2")
    assert dead.claim("ingest.pull", TICK) is not None  # then the process is killed
    claim = alive.claim("ingest.pull", TICK)
    assert claim is not None
    assert claim.resumed_from == "abandoned run of dead:1"
    alive.finish(claim.run_id, OK)
    assert rows(engine) == [("ingest.pull", TICK, OK, "alive:2")]


def test_a_dead_run_of_an_earlier_tick_is_marked_abandoned(engine: Engine) -> None:
    TickLocks(engine, host="dead:1").claim("score", TICK)
    later = TICK + timedelta(minutes=15)
    claim = TickLocks(engine, host="alive:2").claim("score", later)
    assert claim is not None and claim.resumed_from is None
    assert [(r[1], r[2]) for r in rows(engine)] == [(TICK, ABANDONED), (later, RUNNING)]


def test_a_failed_tick_is_retried_only_when_catching_up(engine: Engine) -> None:
    locks = TickLocks(engine, host="a:1")
    claim = locks.claim("score", TICK)
    assert claim is not None
    locks.finish(claim.run_id, FAILED, "RuntimeError: boom")
    assert locks.claim("score", TICK) is None
    again = locks.claim("score", TICK, retry_failed=True)
    assert again is not None and again.run_id == claim.run_id


@needs_pg
def test_the_postgres_job_lock_excludes_other_sessions_and_dies_with_its_session(
    db_url: str,
) -> None:
    first_engine, second_engine = make_engine(db_url), make_engine(db_url)
    first, second = TickLocks(first_engine), TickLocks(second_engine)
    try:
        with first.job_lock("score") as got:
            assert got
            with second.job_lock("score") as other:
                assert not other
            with second.job_lock("ingest.pull") as unrelated:
                assert unrelated
        with second.job_lock("score") as after:
            assert after
    finally:
        first_engine.dispose()
        second_engine.dispose()


def test_the_job_lock_excludes_a_second_thread_of_the_same_process(engine: Engine) -> None:
    locks = TickLocks(engine)
    with locks.job_lock("score") as got:
        assert got
        with locks.job_lock("score") as again:
            assert not again


@given(
    minutes=st.sampled_from([0.05, 1, 5, 15, 60, 1440]),
    a=st.integers(0, 10**9),
    b=st.integers(0, 10**9),
)
def test_every_process_computes_the_same_ticks(minutes: float, a: int, b: int) -> None:
    spec = JobSpec("x", timedelta(minutes=minutes), lambda ctx: None, "x")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    at_a, at_b = base + timedelta(seconds=a / 1000), base + timedelta(seconds=b / 1000)
    tick_a, tick_b = tick_of(spec, CONFIG, at_a), tick_of(spec, CONFIG, at_b)
    assert tick_a <= at_a < next_tick(spec, CONFIG, at_a)
    # Ticks lie on one grid: their distance is a whole number of intervals.
    distance = (tick_a - tick_b).total_seconds() / spec.interval.total_seconds()
    assert abs(distance - round(distance)) < 1e-6


def test_daily_ticks_fall_at_the_configured_time_of_day() -> None:
    spec = JobSpec("tasks.digest", timedelta(days=1), lambda ctx: None, "digest")
    assert tick_of(spec, CONFIG, datetime(2026, 11, 22, 7, 59, tzinfo=UTC)) == datetime(
        2026, 11, 21, 8, 0, tzinfo=UTC
    )
    assert tick_of(spec, CONFIG, datetime(2026, 11, 22, 8, 0, tzinfo=UTC)) == datetime(
        2026, 11, 22, 8, 0, tzinfo=UTC
    )


def test_a_second_serve_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    first = InstanceLock(engine)
    first.acquire()
    try:
        with pytest.raises(AlreadyServing, match="SQLite allows one serve process"):
            InstanceLock(engine).acquire()
        # What a user sees: one line, exit 1.
        result = subprocess.run(
            [sys.executable, "-m", "integration_signals", "serve", "--port", "0"],
            env={
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                "SIGNALS_DATABASE_URL": f"sqlite:///{tmp_path / 'one.db'}",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert "already running on this SQLite database" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        first.release()
    InstanceLock(engine).acquire()  # free again once the first one stops
    engine.dispose()
