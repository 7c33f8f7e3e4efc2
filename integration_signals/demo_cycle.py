"""`signals demo`: build the demo data set through the normal ingest path, then run one
cycle on it. Composes every layer, so it lives in the entry package."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select

from integration_signals.runtime import Runtime, UserError, stderr
from store import models
from store.accounts import import_account_objects
from store.demo import generate
from store.ingest import Ingestor, read_objects
from store.sql import utcnow

# Every table the demo may fill; cleared before a rebuild.
_TABLES = [
    models.TaskEvent,
    models.Task,
    models.Signal,
    models.ScoreHistory,
    models.AccountScore,
    models.ScoringRun,
    models.SyncLedger,
    models.SyncMatch,
    models.SyncRun,
    models.DailyUsage,
    models.Connection,
    models.Event,
    models.Quarantine,
    models.Account,
    models.Integration,
    models.KeyValue,
]


@dataclass
class DemoResult:
    data: dict[str, Any]
    render: Callable[[dict[str, Any]], None]


def _reset(engine: Engine) -> None:
    """Clear the database for a fresh demo, unless it holds data that is not the demo's."""
    t = models.Event.__table__
    with engine.begin() as conn:
        foreign = conn.execute(
            select(func.count()).select_from(t).where(t.c.source != "demo")
        ).scalar_one()
        if foreign:
            raise UserError(
                f"the database holds {foreign:,} events that are not demo data; point "
                "SIGNALS_DATABASE_URL at another file (e.g. sqlite:///demo.db) to run the demo"
            )
        for model in _TABLES:
            conn.execute(delete(model.__table__))


def build_demo_data(rt: Runtime, *, accounts: int, seed: int, end: datetime) -> dict[str, Any]:
    started = time.perf_counter()
    data = generate(seed, accounts, end=end)
    _reset(rt.engine)
    imported = import_account_objects(rt.engine, data.accounts, source="demo", now=end)
    ingestor = Ingestor(rt.engine, rt.config, now=end)
    report = ingestor.ingest(read_objects(data.events), source="demo")
    return {
        "as_of": end,
        "accounts": imported.imported,
        "events": report.as_json(),
        "patterns": dict(sorted(data.patterns.items())),
        "seconds": round(time.perf_counter() - started, 2),
    }


def run_demo(rt: Runtime, *, accounts: int, seed: int, as_json: bool) -> DemoResult:
    end = utcnow()
    if not as_json:
        stderr.print(f"building the demo data set ({accounts} accounts, 180 days to now)…")
    summary = build_demo_data(rt, accounts=accounts, seed=seed, end=end)
    with rt.engine.connect() as conn:
        summary["integrations"] = conn.execute(
            select(func.count()).select_from(models.Integration.__table__)
        ).scalar_one()
        summary["connections"] = conn.execute(
            select(func.count()).select_from(models.Connection.__table__)
        ).scalar_one()
        summary["segments"] = dict(
            conn.execute(
                select(models.Account.segment, func.count()).group_by(models.Account.segment)
            ).all()
        )
    summary["database"] = rt.engine.url.render_as_string(hide_password=True)
    summary["signals"] = demo_signals(rt, as_of=end)
    return DemoResult(summary, _render)


def demo_signals(rt: Runtime, *, as_of: datetime) -> dict[str, Any]:
    """Evaluate the signal rules once and summarise the episodes and tasks they opened."""
    from collections import Counter

    from scoring.signals import evaluate_signals

    report = evaluate_signals(rt.engine, rt.config, as_of=as_of)
    t = models.Task.__table__
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(t.c.id, t.c.account_id, t.c.signal_kind, t.c.title, t.c.owner, t.c.due_at)
            .where(t.c.status == "open")
            .order_by(t.c.due_at, t.c.id)
        ).all()
    return {
        "feed_stale": report.feed_stale,
        "fired": dict(Counter(f["kind"] for f in report.fired).most_common()),
        "open_signals": report.open_signals,
        "tasks_created": report.tasks_created,
        "tasks": [
            {
                "id": r.id,
                "account_id": r.account_id,
                "signal_kind": r.signal_kind,
                "title": r.title,
                "owner": r.owner,
                "due_at": r.due_at,
            }
            for r in _one_per_kind(rows)
        ],
    }


def _one_per_kind(rows: list[Any]) -> list[Any]:
    seen: set[str] = set()
    picked = []
    for row in rows:
        if row.signal_kind not in seen:
            seen.add(row.signal_kind)
            picked.append(row)
    return picked


def _render(d: dict[str, Any]) -> None:
    ev = d["events"]
    print(f"Demo data set built in {d['seconds']}s into {d['database']}")
    print(
        f"  accounts      {d['accounts']:,}  ({', '.join(f'{k} {v}' for k, v in d['segments'].items())})"
    )
    print(f"  integrations  {d['integrations']}   connections {d['connections']:,}")
    print(
        f"  events        accepted {ev['accepted']:,}  duplicates {ev['duplicates']:,}  "
        f"quarantined {ev['quarantined']:,}"
    )
    print("  patterns      " + ", ".join(f"{k} {v}" for k, v in d["patterns"].items()))
    sig = d["signals"]
    print(
        f"Signals: {sig['open_signals']} open, {sig['tasks_created']} playbook tasks created"
        + (" (event feed stale: risk signals on hold)" if sig["feed_stale"] else "")
    )
    print("  fired         " + ", ".join(f"{k} {v}" for k, v in sig["fired"].items()))
    print("  tasks (the first due of each kind):")
    for t in sig["tasks"]:
        print(f"    #{t['id']:<4} {t['owner'] or '-':<20} {t['title']}")
    print("Next: `signals quarantine`, `signals accounts import FILE`, `signals ingest FILE`.")
    print(
        "      `signals signals`, `signals tasks --status open`, `signals tasks claim ID --by YOU`."
    )
