"""Ingest keeps every event once, loses nothing, and quarantines what breaks the contract."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from integration_signals.config import load_config
from integration_signals.store.ingest import Ingestor, ingest_paths, read_objects
from integration_signals.store.models import (
    Account,
    Connection,
    DailyUsage,
    Event,
    Integration,
    Quarantine,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONFIG = load_config(None)


def ev(
    i: int,
    etype: str = "sync.succeeded",
    *,
    at: datetime | None = None,
    account: str = "acme",
    integration: str = "salesforce",
    **extra: Any,
) -> dict[str, Any]:
    at = at or NOW - timedelta(hours=i)
    event = {
        "event_id": f"e-{i}",
        "type": etype,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "account_id": account,
        "integration": integration,
        "connection_id": f"{account}-{integration}",
    }
    if etype == "sync.succeeded":
        event.update(records=100 + i, bytes=1000, api_calls=10, trigger="scheduled")
    event.update(extra)
    return event


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    with path.open("w") as fh:
        for line in lines:
            fh.write(line if isinstance(line, str) else json.dumps(line))
            fh.write("\n")
    return path


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            "events": conn.execute(select(func.count()).select_from(Event)).scalar_one(),
            "quarantine": conn.execute(select(func.count()).select_from(Quarantine)).scalar_one(),
        }


def usage_state(engine: Engine) -> list[tuple]:
    t = DailyUsage.__table__
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(t).order_by(t.c.connection_id, t.c.day))]


def connection_state(engine: Engine) -> list[tuple]:
    t = Connection.__table__
    cols = [c for c in t.c if c.name not in ("state", "state_as_of")]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*cols).order_by(t.c.connection_id))]


def ingest(engine: Engine, objects: list[Any], source: str = "test") -> dict[str, Any]:
    report = Ingestor(engine, CONFIG, now=NOW).ingest(read_objects(objects), source=source)
    return report.as_json()


def test_counts_are_exact_with_duplicates_and_malformed_lines(engine: Engine, tmp_path: Path):
    good = [ev(i) for i in range(10)]
    lines: list[Any] = [*good, good[3], good[3], "{not json", {"event_id": "x"}, good[7]]
    path = write_jsonl(tmp_path / "a.jsonl", lines)
    report = ingest_paths(engine, CONFIG, [path], now=NOW).as_json()
    assert (report["accepted"], report["duplicates"], report["quarantined"]) == (10, 3, 2)
    assert counts(engine) == {"events": 10, "quarantine": 2}


def test_the_same_file_twice_reports_every_event_of_the_second_pass_as_duplicate(
    engine: Engine, tmp_path: Path
):
    path = write_jsonl(tmp_path / "a.jsonl", [ev(i) for i in range(25)] + ["garbage"])
    first = ingest_paths(engine, CONFIG, [path], now=NOW).as_json()
    before = usage_state(engine)
    second = ingest_paths(engine, CONFIG, [path], now=NOW).as_json()
    assert (first["accepted"], first["duplicates"]) == (25, 0)
    assert (second["accepted"], second["duplicates"], second["quarantined"]) == (0, 25, 1)
    assert usage_state(engine) == before
    assert counts(engine) == {"events": 25, "quarantine": 1}  # quarantine kept once


def test_order_of_arrival_does_not_change_the_result(db_url: str, tmp_path: Path):
    events = [ev(i, at=NOW - timedelta(hours=3 * i)) for i in range(40)]
    events += [
        ev(100 + i, "sync.failed", at=NOW - timedelta(hours=3 * i + 1), error="TIMEOUT")
        for i in range(10)
    ]
    events += [
        ev(200, "integration.installed", at=NOW - timedelta(days=10)),
        ev(
            201,
            "integration.configured",
            at=NOW - timedelta(days=9),
            properties={"bidirectional": True, "custom_fields": 4},
        ),
        ev(
            202,
            "integration.configured",
            at=NOW - timedelta(days=2),
            properties={"bidirectional": True, "custom_fields": 9},
        ),
        ev(203, "auth.expired", at=NOW - timedelta(days=1)),
    ]
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)
    engine_a = fresh_engine(db_url, tmp_path, "a")
    ingest(engine_a, events)
    in_order = (usage_state(engine_a), connection_state(engine_a))
    with engine_a.connect() as conn:
        row = conn.execute(select(Connection)).one()._mapping
    assert row["config"] == {"bidirectional": True, "custom_fields": 9}
    assert row["last_error"] == "TIMEOUT"
    engine_b = fresh_engine(db_url, tmp_path, "b")
    # Shuffled, and in small separate runs (late arrivals).
    for chunk in range(0, len(shuffled), 7):
        ingest(engine_b, shuffled[chunk : chunk + 7])
    assert (usage_state(engine_b), connection_state(engine_b)) == in_order


def fresh_engine(db_url: str, tmp_path: Path, name: str) -> Engine:
    """An empty database: a new SQLite file, or the test's PostgreSQL database emptied."""
    from integration_signals.store.engine import make_engine
    from tests.conftest import _truncate_all

    if db_url.startswith("sqlite"):
        return make_engine(f"sqlite:///{tmp_path / (name + '.db')}")
    _truncate_all(db_url)
    return make_engine(db_url)


def test_late_events_fold_into_their_own_day(engine: Engine):
    ingest(engine, [ev(1, at=NOW - timedelta(hours=1))])
    ingest(engine, [ev(2, at=NOW - timedelta(days=5)), ev(3, at=NOW - timedelta(days=5, hours=2))])
    days = {row[1]: row for row in usage_state(engine)}
    assert len(days) == 2
    late = days[(NOW - timedelta(days=5)).date()]
    assert late[4] == 2  # successes
    with engine.connect() as conn:
        conn_row = conn.execute(select(Connection)).one()._mapping
    assert conn_row["activated_at"] == NOW - timedelta(days=5, hours=2)
    assert conn_row["last_success_at"] == NOW - timedelta(hours=1)


@pytest.mark.parametrize(
    ("hours_ahead", "accepted"),
    [
        pytest.param(23.9, 1, id="23.9h-ahead-accepted"),
        pytest.param(24.1, 0, id="24.1h-ahead-quarantined"),
    ],
)
def test_clock_skew_limit_is_24_hours(engine: Engine, hours_ahead: float, accepted: int):
    report = ingest(engine, [ev(1, at=NOW + timedelta(hours=hours_ahead))])
    assert report["accepted"] == accepted
    assert report["quarantined"] == 1 - accepted


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        pytest.param({"type": "sync.succeeded"}, "event_id is required", id="no-id"),
        pytest.param({**ev(1), "type": "sync.exploded"}, "not a known event type", id="bad-type"),
        pytest.param({**ev(1), "occurred_at": "yesterday"}, "not an RFC 3339", id="bad-time"),
        pytest.param({**ev(1), "account_id": ""}, "account_id is required", id="no-account"),
        pytest.param(
            {**ev(1), "integration": None}, "integration is required", id="no-integration"
        ),
        pytest.param({**ev(1), "records": -5}, "non-negative integer", id="negative-count"),
        pytest.param({**ev(1), "records": 1.5}, "non-negative integer", id="fractional-count"),
        pytest.param({**ev(1), "records": "12"}, "non-negative integer", id="string-count"),
        pytest.param(
            {**ev(1), "trigger": "cron"}, "scheduled, webhook or manual", id="bad-trigger"
        ),
        pytest.param({**ev(1), "type": ["sync.succeeded"]}, "not a known", id="list-type"),
        pytest.param({**ev(1), "properties": [1]}, "must be a JSON object", id="list-properties"),
        pytest.param([1, 2], "not a JSON object", id="array"),
    ],
)
def test_each_rule_quarantines_with_its_reason(engine: Engine, event: Any, reason: str):
    report = ingest(engine, [event, ev(99)])
    assert report["accepted"] == 1 and report["quarantined"] == 1
    with engine.connect() as conn:
        row = conn.execute(select(Quarantine)).one()._mapping
    assert reason in row["reason"]
    assert row["line_no"] == 1


def test_naive_timestamps_are_utc(engine: Engine):
    ingest(engine, [{**ev(1), "occurred_at": "2026-11-19T08:00:00"}])
    with engine.connect() as conn:
        at = conn.execute(select(Event.occurred_at)).scalar_one()
    assert at == datetime(2026, 11, 19, 8, tzinfo=UTC)


def test_unknown_account_gets_a_stub_and_unknown_integration_is_added_and_reported(
    engine: Engine,
):
    report = ingest(engine, [ev(1, account="newco", integration="Notion")])
    assert report["new_accounts"] == 1
    assert report["new_integrations"] == ["notion"]
    with engine.connect() as conn:
        stub = conn.execute(select(Account).where(Account.account_id == "newco")).one()._mapping
        integ = conn.execute(select(Integration).where(Integration.key == "notion")).one()._mapping
    assert stub["is_stub"] is True
    assert (integ["category"], integ["rhythm"], integ["auto_added"]) == ("other", "daily", True)


def test_csv_events_are_read_with_line_numbers(engine: Engine, tmp_path: Path):
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,type,occurred_at,account_id,integration,records,api_calls,trigger,region\n"
        "c-1,sync.succeeded,2026-11-19T08:00:00Z,acme,zendesk,120,4,scheduled,emea\n"
        "c-2,sync.succeeded,2026-11-19T09:00:00Z,acme,zendesk,lots,4,scheduled,emea\n"
        "c-3,sync.failed,2026-11-19T10:00:00Z,acme,zendesk,,,,emea\n"
    )
    report = ingest_paths(engine, CONFIG, [path], now=NOW).as_json()
    assert (report["accepted"], report["quarantined"]) == (2, 1)
    assert report["quarantine_samples"][0]["line"] == 3
    with engine.connect() as conn:
        props = conn.execute(select(Event.properties).where(Event.event_id == "c-1")).scalar_one()
    assert props == {"region": "emea"}


# ---------------------------------------------------------------- property test

_EXAMPLE = itertools.count()
_valid_ids = st.integers(min_value=0, max_value=60)
_junk = st.one_of(
    st.text(max_size=40).filter(lambda s: s.strip() and "\n" not in s and "\r" not in s),
    st.builds(
        lambda d: json.dumps(d), st.dictionaries(st.text(max_size=8), st.integers(), max_size=4)
    ),
    st.sampled_from(['{"event_id": 5}', "[]", "null", '{"type": "sync.succeeded"}', "{"]),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ids=st.lists(_valid_ids, max_size=80),
    junk=st.lists(_junk, max_size=20),
    seed=st.integers(min_value=0, max_value=10**6),
)
def test_fuzzed_input_counts_are_exact(engine: Engine, ids: list[int], junk: list[str], seed: int):
    from tests.conftest import _requested_url

    # Each example starts from an empty events table: use unique id prefixes instead.
    prefix = f"f{next(_EXAMPLE)}-"
    valid = [{**ev(i), "event_id": prefix + str(i)} for i in ids]
    lines: list[Any] = [json.dumps(v) for v in valid] + junk
    random.Random(seed).shuffle(lines)
    objects: list[Any] = []
    expected_bad = 0
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            obj = line  # unparseable text arrives as a string, which is not an object
        is_valid = isinstance(obj, dict) and str(obj.get("event_id", "")).startswith(prefix)
        expected_bad += 0 if is_valid else 1
        objects.append(obj)
    before = counts(engine)["events"]
    report = ingest(engine, objects)
    unique = len(set(ids))
    assert report["accepted"] == unique
    assert report["duplicates"] == len(ids) - unique
    assert report["quarantined"] == expected_bad
    assert counts(engine)["events"] - before == unique
    assert _requested_url()  # the same property holds on whichever database runs


# ---------------------------------------------------------------- kill and resume


def _big_file(path: Path, n: int) -> Path:
    rng = random.Random(5)
    lines = []
    for i in range(n):
        at = NOW - timedelta(minutes=rng.randrange(60 * 24 * 30))
        account = f"a{rng.randrange(50)}"
        lines.append(
            ev(
                i,
                at=at,
                account=account,
                integration=rng.choice(["salesforce", "zendesk", "slack"]),
            )
        )
    lines += [lines[j] for j in range(0, n, 97)]  # duplicates
    lines += ["{broken" for _ in range(7)]
    rng.shuffle(lines)
    return write_jsonl(path, lines)


def test_a_killed_import_run_again_ends_with_the_same_totals(db_url: str, tmp_path: Path):
    source = _big_file(tmp_path / "big.jsonl", 30_000)
    config = tmp_path / "small-batches.toml"
    config.write_text("[ingest]\nbatch_size = 500\n")
    env = {**os.environ, "SIGNALS_DATABASE_URL": db_url, "SIGNALS_CONFIG": str(config)}
    from integration_signals.store.engine import make_engine

    engine = make_engine(db_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "integration_signals", "ingest", str(source), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if counts(engine)["events"] > 2000:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = counts(engine)["events"]
    assert 0 < partial < 30_000, "the import was not interrupted part-way"
    rerun = subprocess.run(
        [sys.executable, "-m", "integration_signals", "ingest", str(source), "--json"],
        env=env,
        capture_output=True,
        cwd=tmp_path,
        check=True,
    )
    report = json.loads(rerun.stdout)
    assert report["accepted"] + report["duplicates"] + report["quarantined"] == 30_000 + 310 + 7
    assert counts(engine) == {"events": 30_000, "quarantine": 7}
    killed_usage = usage_state(engine)
    killed_connections = connection_state(engine)
    # A clean, uninterrupted import of the same file gives the same rollups.
    clean = fresh_engine(db_url, tmp_path, "clean")
    ingest_paths(clean, CONFIG, [source], now=NOW)
    assert usage_state(clean) == killed_usage
    assert connection_state(clean) == killed_connections


def test_parsing_in_a_worker_process_gives_the_same_result(db_url: str, tmp_path: Path):
    """Big files are parsed in a worker process; the result must not depend on it."""
    source = _big_file(tmp_path / "big.jsonl", 3_000)
    with source.open("a") as fh:
        fh.write('{"event_id": "late", "type": "bogus"}\n')
    in_process = fresh_engine(db_url, tmp_path, "in")
    first = ingest_paths(in_process, CONFIG, [source], now=NOW, parallel=False).as_json()
    expected = (usage_state(in_process), connection_state(in_process))
    with in_process.connect() as conn:
        expected_q = sorted((q.line_no, q.reason) for q in conn.execute(select(Quarantine)))
    worker = fresh_engine(db_url, tmp_path, "worker")
    # Small blocks: many of them, and lines cut at block edges.
    second = ingest_paths(
        worker, CONFIG, [source], now=NOW, parallel=True, block_bytes=4096
    ).as_json()
    assert {k: second[k] for k in ("accepted", "duplicates", "quarantined")} == {
        k: first[k] for k in ("accepted", "duplicates", "quarantined")
    }
    assert (usage_state(worker), connection_state(worker)) == expected
    with worker.connect() as conn:
        assert sorted((q.line_no, q.reason) for q in conn.execute(select(Quarantine))) == expected_q
