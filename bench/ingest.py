"""Ingest benchmark: events per second for a JSONL file with 1% duplicates and 0.1%
malformed lines, through the real `signals ingest` code path on SQLite.

    python bench/ingest.py [--events 1000000] [--runs 3] [--database-url URL]

Prints the median rate and writes the figures into bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._readme import write_section  # noqa: E402
from integration_signals.config import load_config  # noqa: E402
from integration_signals.store.engine import make_engine  # noqa: E402
from integration_signals.store.ingest import ingest_paths  # noqa: E402

TYPES = ("sync.succeeded",) * 8 + ("sync.failed", "api.calls")


def make_file(path: Path, n: int, seed: int = 1) -> dict[str, int]:
    """Write ``n`` lines shaped like a month of a real feed: 2,000 accounts with 5
    connections each syncing through the day, mostly in time order but with late and
    out-of-order arrivals; 1% of lines repeat an earlier event id (retries, replays)
    and 0.1% are malformed."""
    rng = random.Random(seed)
    end = datetime(2026, 11, 1, tzinfo=UTC)
    n_bad = n // 1000
    n_dup = n // 100
    n_unique = n - n_bad - n_dup
    integrations = ("salesforce", "hubspot", "snowflake", "zendesk", "slack")
    span = 30 * 86400
    start = end - timedelta(seconds=span)
    events: list[tuple[float, bytes]] = []
    for i in range(n_unique):
        account = f"acct-{rng.randrange(2000):05d}"
        integration = integrations[rng.randrange(len(integrations))]
        etype = TYPES[i % len(TYPES)]
        offset = span * i / n_unique
        at = start + timedelta(seconds=offset)
        # 5% arrive late: up to two days after they happened.
        arrival = offset + (
            rng.uniform(0, 2 * 86400) if rng.random() < 0.05 else rng.uniform(0, 60)
        )
        event = {
            "event_id": f"e-{i:09d}",
            "type": etype,
            "occurred_at": at.isoformat().replace("+00:00", "Z"),
            "account_id": account,
            "integration": integration,
            "connection_id": f"{account}-{integration}",
            "records": rng.randrange(1, 20000),
            "bytes": rng.randrange(1, 10**7),
            "api_calls": rng.randrange(0, 500),
            "trigger": "scheduled" if rng.random() < 0.9 else "manual",
            "error": "TIMEOUT" if etype == "sync.failed" else None,
            "properties": {},
        }
        events.append((arrival, orjson.dumps(event)))
    for _ in range(n_dup):
        arrival, line = events[rng.randrange(n_unique)]
        events.append((arrival + rng.uniform(0, 3600), line))
    broken = (
        b'{"event_id": "x", "type": ',
        b'{"event_id":"b-1","type":"nope"}',
        b"not json at all",
    )
    for j in range(n_bad):
        events.append((rng.uniform(0, span), broken[j % 3].replace(b"b-1", f"b-{j}".encode())))
    events.sort(key=lambda item: item[0])
    path.write_bytes(b"\n".join(line for _, line in events) + b"\n")
    return {"lines": n, "unique": n_unique, "duplicates": n_dup, "malformed": n_bad}


def run_once(path: Path, url: str | None, workdir: Path, i: int) -> tuple[float, dict]:
    db_url = url or f"sqlite:///{workdir}/bench-{i}.db"
    engine = make_engine(db_url)
    if url:  # a shared server database: start from empty tables
        from sqlmodel import SQLModel

        SQLModel.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        from integration_signals.store import engine as engine_mod

        engine_mod._migrated.clear()
        engine = make_engine(db_url)
    config = load_config(None)
    started = time.perf_counter()
    report = ingest_paths(engine, config, [path], now=datetime(2026, 11, 2, tzinfo=UTC))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, report.as_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file per run")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "events.jsonl"
        shape = make_file(path, args.events)
        rates = []
        for i in range(args.runs):
            elapsed, report = run_once(path, args.database_url, workdir, i)
            assert report["accepted"] == shape["unique"], report
            assert report["duplicates"] == shape["duplicates"], report
            assert report["quarantined"] == shape["malformed"], report
            rates.append(args.events / elapsed)
            print(f"run {i + 1}: {elapsed:.2f}s, {args.events / elapsed:,.0f} events/s", flush=True)
    median = statistics.median(rates)
    target = 50_000
    db = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"median {median:,.0f} events/s on {db} (target >= {target:,}): "
        f"{median / target:.2f}x the target"
    )
    if not args.no_readme:
        write_section(
            "ingest",
            f"`python bench/ingest.py --events {args.events}` ({db}, {args.runs} runs, "
            f"{shape['duplicates']:,} duplicates and {shape['malformed']:,} malformed lines; "
            f"counts asserted exact each run)\n\n"
            "| median events/s | runs (events/s) | target | ratio to target |\n"
            "| --- | --- | --- | --- |\n"
            f"| {median:,.0f} | {', '.join(f'{r:,.0f}' for r in rates)} | >= {target:,} |"
            f" {median / target:.2f}x |\n",
        )


if __name__ == "__main__":
    main()
