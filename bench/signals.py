"""Signal evaluation benchmark: the cost of `evaluate_signals` over every account, as
each 15-minute scoring run pays it, against a per-account loop (what calling the
rules account by account would cost) measured in the same run.

    python bench/signals.py [--accounts 10000] [--days 90] [--runs 3] [--database-url URL]

The store is filled directly with rollups (accounts, 5 connections each, a daily
usage row per connection and day), shaped so that a few percent of connections
degrade, go quiet or near their API limit. Prints medians and writes bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._readme import write_section  # noqa: E402
from integration_signals.config import load_config  # noqa: E402
from integration_signals.scoring.facts import load_facts  # noqa: E402
from integration_signals.scoring.signals import evaluate_signals  # noqa: E402
from integration_signals.store.engine import make_engine  # noqa: E402
from integration_signals.store.feed import mark_received  # noqa: E402
from integration_signals.store.models import Account, Connection, DailyUsage  # noqa: E402
from integration_signals.store.sql import chunked  # noqa: E402

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
INTEGRATIONS = ("salesforce", "hubspot", "snowflake", "zendesk", "slack")


def fill(engine, n_accounts: int, days: int, seed: int = 3) -> dict[str, int]:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    today = AS_OF.date()
    first_day = today - timedelta(days=days - 1)
    accounts, conns, usage = [], [], []
    patterns = {"healthy": 0, "degrading": 0, "abandoned": 0, "near_limit": 0}
    for i in range(n_accounts):
        aid = f"acct-{i:06d}"
        limit = rng.choice((5_000, 20_000, 50_000))
        near_limit = rng.random() < 0.03
        accounts.append(
            {
                "account_id": aid,
                "name": f"Account {i}",
                "segment": rng.choice(("smb", "mid_market", "enterprise")),
                "created_at": AS_OF - timedelta(days=rng.randint(20, 1500)),
                "api_limit_daily": limit,
                "csm": f"csm{i % 7}@example.com",
                "owner": f"ae{i % 5}@example.com",
                "is_stub": False,
            }
        )
        for integration in INTEGRATIONS:
            cid = f"{aid}-{integration}"
            roll = rng.random()
            pattern = "healthy"
            stop: date | None = None
            if roll < 0.04:
                pattern = "degrading"
            elif roll < 0.08:
                pattern = "abandoned"
                stop = today - timedelta(days=rng.randint(10, 60))
            if near_limit and integration == "salesforce":
                pattern = "near_limit"
            patterns[pattern] += 1
            last_success = None
            for d in range(days):
                day = first_day + timedelta(days=d)
                if stop is not None and day > stop:
                    break
                failures = 0
                successes = 4
                if pattern == "degrading" and (today - day).days < 7:
                    failures, successes = 2, 2
                calls = rng.randint(50, 400)
                if pattern == "near_limit":
                    calls = int(limit * (0.5 + 0.35 * d / days))
                at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=20)
                last_success = at
                usage.append(
                    {
                        "connection_id": cid,
                        "day": day,
                        "account_id": aid,
                        "integration": integration,
                        "successes": successes,
                        "failures": failures,
                        "automated": successes,
                        "manual": 0,
                        "records": 1000,
                        "bytes": 100_000,
                        "api_calls": calls,
                        "first_success_at": at,
                        "last_success_at": at,
                        "last_failure_at": at if failures else None,
                    }
                )
            # Installed and activated long before the window (a mature book of accounts).
            start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC) - timedelta(
                days=rng.randint(100, 900)
            )
            conns.append(
                {
                    "connection_id": cid,
                    "account_id": aid,
                    "integration": integration,
                    "installed_at": start,
                    "last_installed_at": start,
                    "activated_at": start + timedelta(hours=20),
                    "last_success_at": last_success,
                    "last_attempt_at": last_success,
                    "last_event_at": last_success,
                    "setup_failures": 0,
                }
            )
    with engine.begin() as conn:
        conn.execute(Account.__table__.insert(), accounts)
        for part in chunked(conns, 5000):
            conn.execute(Connection.__table__.insert(), list(part))
        for part in chunked(usage, 20000):
            conn.execute(DailyUsage.__table__.insert(), list(part))
        mark_received(conn, AS_OF - timedelta(minutes=5))
    return {
        "accounts": n_accounts,
        "connections": len(conns),
        "rollup_rows": len(usage),
        **patterns,
    }


def timed(func) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=200, help="accounts in the per-account loop")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    config = load_config(None)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        engine = make_engine(url)
        started = time.perf_counter()
        shape = fill(engine, args.accounts, args.days)
        t_fill = time.perf_counter() - started
        print(f"filled {shape} in {t_fill:.1f}s", file=sys.stderr)
        first_report = {}

        def first() -> None:
            first_report["r"] = evaluate_signals(engine, config, as_of=AS_OF)

        t_first = timed(first)
        fired = len(first_report["r"].fired)
        steady = [
            timed(lambda: evaluate_signals(engine, config, as_of=AS_OF)) for _ in range(args.runs)
        ]
        facts_only = statistics.median(
            timed(lambda: load_facts(engine, config, as_of=AS_OF.date())) for _ in range(args.runs)
        )
        ids = [
            f"acct-{i:06d}" for i in range(0, args.accounts, max(1, args.accounts // args.sample))
        ]
        ids = ids[: args.sample]
        t_loop = timed(
            lambda: [evaluate_signals(engine, config, as_of=AS_OF, account_ids=[a]) for a in ids]
        )
        per_account = t_loop / len(ids)
        loop_scaled = per_account * args.accounts
        touched = ids[:50]
        after_ingest = statistics.median(
            timed(lambda: evaluate_signals(engine, config, as_of=AS_OF, account_ids=touched))
            for _ in range(args.runs)
        )
        engine.dispose()
    median = statistics.median(steady)
    dialect = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    body = (
        f"`python bench/signals.py --accounts {args.accounts} --days {args.days}` on {dialect}:"
        f" {shape['accounts']:,} accounts, {shape['connections']:,} connections,"
        f" {shape['rollup_rows']:,} daily rollup rows.\n\n"
        "| what | time |\n| --- | --- |\n"
        f"| first evaluation of every account ({fired:,} episodes and tasks opened) | {t_first:.2f} s |\n"
        f"| re-evaluation of every account, nothing new (median of {args.runs}) | {median:.2f} s |\n"
        f"| of which scoring's connection facts (`scoring.facts.load_facts`, the same load"
        f" `score_accounts` does), median | {facts_only:.2f} s |\n"
        f"| 50 touched accounts (after an ingest batch), median | {after_ingest * 1000:.0f} ms |\n"
        f"| per-account loop, {len(ids)} accounts measured, scaled to {args.accounts:,} |"
        f" {loop_scaled:.1f} s ({per_account * 1000:.1f} ms/account) |\n\n"
        f"Batched evaluation is **{loop_scaled / median:.0f}x** faster than the per-account"
        " loop measured in the same run.\n"
        f"{facts_only / median:.0%} of a full evaluation is loading scoring's facts, which"
        " `score_accounts` has just loaded for the same day.\n"
    )
    print(body)
    if not args.no_readme:
        write_section("signals", body)


if __name__ == "__main__":
    main()
