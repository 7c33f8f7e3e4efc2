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
    return DemoResult(summary, _render)


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
    print("Next: `signals quarantine`, `signals accounts import FILE`, `signals ingest FILE`.")
