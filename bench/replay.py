"""Replay benchmark: the cost of one simulated day of `signals replay` against one day
of the live path (ingest that day's events, rescore, evaluate the signals), measured in
the same run on the same database.

    python bench/replay.py [--accounts 300 10000] [--days 180] [--live-days 5]
                           [--connections 3] [--syncs 2] [--url sqlite]

For each account count: events for ``--days`` days are generated (``--connections``
connections per account, ``--syncs`` syncs per connection per day, daily API calls,
degradations that heal, abandonments, API-limit climbs). The first days minus
``--live-days`` are ingested with no scoring and replayed (the history-loading recipe);
then the last ``--live-days`` days go live one by one: ingest the day's file (which
rescores what it touched, as `signals ingest` does), then `signals score` as of the
end of the day. Reported: the median live day, replay seconds per simulated day, and
their ratio (target: replay day <= live day). Writes its section of bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._readme import write_section  # noqa: E402
from integration_signals.config import load_config  # noqa: E402
from integration_signals.schedules.pipeline import after_ingest  # noqa: E402
from integration_signals.scoring.replay import day_end, replay  # noqa: E402
from integration_signals.scoring.run import score_accounts  # noqa: E402
from integration_signals.scoring.signals import evaluate_signals  # noqa: E402
from integration_signals.store.accounts import import_account_objects  # noqa: E402
from integration_signals.store.engine import make_engine  # noqa: E402
from integration_signals.store.ingest import ingest_paths  # noqa: E402

KEYS = ("salesforce", "hubspot", "snowflake", "zendesk", "slack", "segment", "jira")
START = date(2026, 3, 1)


def _iso(day: date, seconds: int) -> str:
    moment = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


def generate(
    folder: Path, *, accounts: int, days: int, connections: int, syncs: int, seed: int = 7
) -> tuple[list[dict[str, Any]], list[Path]]:
    """Account rows and one JSONL file per day."""
    rng = random.Random(seed)
    rows = []
    plans = []
    for i in range(accounts):
        aid = f"a{i:05d}"
        rows.append(
            {
                "account_id": aid,
                "name": f"Account {i}",
                "segment": rng.choice(("smb", "mid_market", "enterprise")),
                "plan": "pro",
                "mrr": rng.randint(500, 20_000),
                "created_at": "2025-01-01T00:00:00Z",
                "api_limit_daily": 10_000,
                "csm": f"csm{i % 20}@example.com",
                "owner": f"ae{i % 10}@example.com",
            }
        )
        for k in range(connections):
            key = KEYS[(i + k) % len(KEYS)]
            fate = rng.random()
            degrade = (rng.randrange(days // 4, days - days // 4), 8) if fate < 0.05 else None
            idle = rng.randrange(days // 4, days) if 0.05 <= fate < 0.10 else None
            back = idle + rng.randrange(15, 40) if idle is not None and rng.random() < 0.5 else None
            plans.append((aid, key, f"{aid}-{key}", degrade, idle, back))
    climb = {r["account_id"] for r in rows if rng.random() < 0.05}
    files = []
    n = 0
    for d in range(days):
        day = START + timedelta(days=d)
        out = []
        for aid, key, cid, degrade, idle, back in plans:
            base = {"account_id": aid, "integration": key, "connection_id": cid}
            if d == 0:
                n += 1
                out.append(
                    {
                        "event_id": f"e{n}",
                        "type": "integration.installed",
                        "occurred_at": _iso(day, 60),
                        **base,
                    }
                )
            if idle is not None and idle <= d and (back is None or d < back):
                continue
            failing = degrade is not None and degrade[0] <= d < degrade[0] + degrade[1]
            for s in range(syncs):
                n += 1
                at = _iso(day, 3600 + s * 36_000 + (n % 3000))
                if failing and s % 2 == 0:
                    out.append(
                        {
                            "event_id": f"e{n}",
                            "type": "sync.failed",
                            "occurred_at": at,
                            "error": "TIMEOUT",
                            **base,
                        }
                    )
                else:
                    out.append(
                        {
                            "event_id": f"e{n}",
                            "type": "sync.succeeded",
                            "occurred_at": at,
                            "records": 800,
                            "bytes": 80_000,
                            "api_calls": 40,
                            "trigger": "scheduled",
                            **base,
                        }
                    )
        for aid in sorted(climb):
            n += 1
            out.append(
                {
                    "event_id": f"e{n}",
                    "type": "api.calls",
                    "account_id": aid,
                    "integration": "salesforce",
                    "connection_id": f"{aid}-api",
                    "occurred_at": _iso(day, 80_000),
                    "api_calls": 4000 + 40 * d,
                }
            )
        # a late event keeps the feed fresh at the end of each day
        n += 1
        out.append(
            {
                "event_id": f"e{n}",
                "type": "sync.succeeded",
                "account_id": rows[0]["account_id"],
                "integration": "slack",
                "connection_id": "feed-heartbeat",
                "occurred_at": _iso(day, 85_000),
                "records": 1,
                "trigger": "scheduled",
            }
        )
        path = folder / f"day-{d:03d}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in out))
        files.append(path)
    return rows, files


def run_one(
    url: str,
    *,
    accounts: int,
    days: int,
    live_days: int,
    connections: int,
    syncs: int,
    folder: Path,
) -> dict[str, Any]:
    config = load_config(None)
    rows, files = generate(
        folder, accounts=accounts, days=days, connections=connections, syncs=syncs
    )
    events = sum(1 for f in files for _ in f.open("rb"))
    engine = make_engine(url)
    import_account_objects(engine, rows, source="bench", now=datetime(2026, 1, 1, tzinfo=UTC))
    history = days - live_days
    clock = time.perf_counter()
    ingest_paths(engine, config, files[:history], now=day_end(START + timedelta(days=history)))
    backfill = time.perf_counter() - clock
    report = replay(engine, config, start=START, end=START + timedelta(days=history - 1))
    live = []
    for d in range(history, days):
        day = START + timedelta(days=d)
        clock = time.perf_counter()
        got = ingest_paths(engine, config, [files[d]], now=day_end(day) - timedelta(minutes=5))
        after_ingest(engine, config, got, now=day_end(day) - timedelta(minutes=5))
        scored = score_accounts(engine, config, as_of=day_end(day))
        evaluate_signals(engine, config, as_of=day_end(day), scored_facts=scored.all_facts)
        live.append(time.perf_counter() - clock)
    engine.dispose()
    live_day = statistics.median(live)
    return {
        "accounts": accounts,
        "connections": accounts * connections,
        "days": days,
        "events": events,
        "backfill_s": backfill,
        "replay_days": report.days,
        "replay_day_s": report.seconds_per_day,
        "replay_total_s": report.seconds,
        "episodes": report.episodes_opened,
        "tasks_live": report.tasks_live,
        "tasks_closed": report.tasks_closed,
        "live_day_s": live_day,
        "ratio": report.seconds_per_day / live_day,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[300, 10_000])
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--live-days", type=int, default=5)
    parser.add_argument("--connections", type=int, default=3)
    parser.add_argument("--syncs", type=int, default=2)
    parser.add_argument("--url", default="sqlite")
    args = parser.parse_args()
    results = []
    for n in args.accounts:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db" if args.url == "sqlite" else args.url
            r = run_one(
                url,
                accounts=n,
                days=args.days,
                live_days=args.live_days,
                connections=args.connections,
                syncs=args.syncs,
                folder=Path(tmp),
            )
        results.append(r)
        print(
            f"{n:>6,} accounts, {r['events']:,} events over {r['days']} days: replay"
            f" {r['replay_day_s']:.3f} s/day ({r['replay_days']} days), live"
            f" {r['live_day_s']:.3f} s/day (median of {args.live_days}) -> ratio"
            f" {r['ratio']:.2f} ({'meets' if r['ratio'] <= 1 else 'misses'} target <= 1)",
            flush=True,
        )
    load = os.getloadavg()
    lines = [
        "`python bench/replay.py` — replay of a history, per simulated day, against the live"
        " path on the same database in the same run: the last days go live one by one"
        " (ingest the day's events, which rescores what they touched, then `signals score`"
        " as of the end of the day). Target: replay day <= live day (ratio <= 1).",
        f"Sizes: {args.connections} connections per account, {args.syncs} syncs per"
        f" connection per day, daily API calls for 5% of accounts; SQLite; machine load"
        f" {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) at the end.",
        "",
        "| accounts | events | days replayed | replay s/day | live s/day (median) | ratio |"
        " episodes | tasks live / closed |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['accounts']:,} | {r['events']:,} | {r['replay_days']} |"
            f" {r['replay_day_s']:.3f} | {r['live_day_s']:.3f} | {r['ratio']:.2f} |"
            f" {r['episodes']:,} | {r['tasks_live']:,} / {r['tasks_closed']:,} |"
        )
    write_section("replay", "\n".join(lines))


if __name__ == "__main__":
    main()
