"""The syncs layer's reads and writes in the store: computed values, remembered
matches, the ledger of confirmed writes, and run records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection

from store import models
from store.sql import as_utc, upsert
from syncs.contract import AccountValues, RecordChange, RecordResult

accounts_t = models.Account.__table__
scores_t = models.AccountScore.__table__
matches_t = models.SyncMatch.__table__
ledger_t = models.SyncLedger.__table__
runs_t = models.SyncRun.__table__
signals_t = models.Signal.__table__


@dataclass(frozen=True)
class SyncAccount:
    """An account with a current score, and what matching needs to know about it."""

    values: AccountValues
    name: str | None
    domain: str | None
    crm_id: str | None


def load_accounts(conn: Connection, id_column: str) -> list[SyncAccount]:
    """Every scored account with its values (scoring's and signals' results)."""
    a, s = accounts_t.c, scores_t.c
    rows = conn.execute(
        select(
            s.account_id,
            s.score,
            s.band,
            s.segments,
            s.active_integrations,
            s.reason,
            s.scored_at,
            a.mrr,
            a.name,
            a.domain,
            a[id_column].label("crm_id"),
        )
        .select_from(scores_t.join(accounts_t, a.account_id == s.account_id))
        .order_by(s.account_id)
    ).all()
    return [
        SyncAccount(
            values=AccountValues(
                account_id=r.account_id,
                score=int(r.score),
                band=r.band,
                segments=tuple(r.segments or ()),
                active_integrations=int(r.active_integrations or 0),
                reason=r.reason,
                scored_at=as_utc(r.scored_at),
                mrr=float(r.mrr) if r.mrr is not None else None,
            ),
            name=r.name,
            domain=r.domain,
            crm_id=(r.crm_id or "").strip() or None,
        )
        for r in rows
    ]


def load_matches(conn: Connection, destination: str) -> dict[str, str]:
    m = matches_t.c
    rows = conn.execute(select(m.account_id, m.record_id).where(m.destination == destination)).all()
    return {r.account_id: r.record_id for r in rows}


def save_matches(
    conn: Connection, destination: str, found: Mapping[str, str], *, now: datetime
) -> None:
    rows = [
        {
            "destination": destination,
            "account_id": account_id,
            "record_id": record_id,
            "matched_by": "domain",
            "matched_at": now,
        }
        for account_id, record_id in found.items()
    ]
    upsert(conn, matches_t, rows, keys=["destination", "account_id"], update=None)


def load_ledger(conn: Connection, destination: str) -> dict[str, dict[str, str | None]]:
    lc = ledger_t.c
    out: dict[str, dict[str, str | None]] = {}
    for r in conn.execute(
        select(lc.record_id, lc.field, lc.value).where(lc.destination == destination)
    ):
        out.setdefault(r.record_id, {})[r.field] = r.value
    return out


def confirm_writes(
    conn: Connection,
    destination: str,
    changes: Mapping[str, RecordChange],
    results: Iterable[RecordResult],
    *,
    run_id: int | None,
    now: datetime,
) -> None:
    """Enter the fields of every confirmed record into the ledger."""
    rows = [
        {
            "destination": destination,
            "record_id": r.record_id,
            "field": name,
            "value": value,
            "written_at": now,
            "run_id": run_id,
        }
        for r in results
        if r.ok
        for name, value in changes[r.record_id].new_values.items()
    ]
    upsert(
        conn,
        ledger_t,
        rows,
        keys=["destination", "record_id", "field"],
        update=lambda ex: {"value": ex.value, "written_at": ex.written_at, "run_id": ex.run_id},
    )


def feed_stale_open(conn: Connection) -> bool:
    sig = signals_t.c
    row = conn.execute(
        select(sig.id).where(and_(sig.kind == "feed_stale", sig.status == "open")).limit(1)
    ).first()
    return row is not None


def start_run(
    conn: Connection, destination: str, *, dry_run: bool, full: bool, now: datetime
) -> int:
    """Record a new run. A real run also marks earlier runs of the destination that
    never finished (a killed process) as ``interrupted``: their confirmed writes are in
    the ledger, and this run finishes the rest."""
    if not dry_run:
        r = runs_t.c
        conn.execute(
            update(runs_t)
            .where(and_(r.destination == destination, r.status == "running", r.dry_run.is_(False)))
            .values(status="interrupted", error="the process ended before the run finished")
        )
    result = conn.execute(
        runs_t.insert().values(
            destination=destination,
            started_at=now,
            dry_run=dry_run,
            full=full,
            status="running",
        )
    )
    return int(result.inserted_primary_key[0])


def update_run(conn: Connection, run_id: int, **values: Any) -> None:
    conn.execute(update(runs_t).where(runs_t.c.id == run_id).values(**values))


def run_history(conn: Connection, *, destination: str | None, limit: int) -> list[dict[str, Any]]:
    r = runs_t.c
    query = select(runs_t).order_by(r.id.desc()).limit(limit)
    if destination:
        query = query.where(r.destination == destination)
    return [dict(row._mapping) for row in conn.execute(query)]
