"""The syncs layer's reads and writes in the store: computed values, remembered
matches, the ledger of confirmed writes, and run records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Text, and_, cast, or_, select, update
from sqlalchemy.engine import Connection

from integration_signals.store import models
from integration_signals.store.sql import as_utc, upsert
from integration_signals.syncs.contract import AccountValues, RecordChange, RecordResult

accounts_t = models.Account.__table__
scores_t = models.AccountScore.__table__
matches_t = models.SyncMatch.__table__
ledger_t = models.SyncLedger.__table__
runs_t = models.SyncRun.__table__
signals_t = models.Signal.__table__
tasks_t = models.Task.__table__


@dataclass(frozen=True, slots=True)
class SyncAccount:
    """An account with a current score, and what matching needs to know about it."""

    values: AccountValues
    name: str | None
    domain: str | None
    crm_id: str | None


def _segments(raw: Any) -> tuple[str, ...]:
    if raw == "[]" or raw is None:  # most accounts
        return ()
    if isinstance(raw, str | bytes):
        raw = orjson.loads(raw)
    return tuple(raw or ())


def _trait(raw: Any, key: str) -> str | None:
    if isinstance(raw, str | bytes):
        raw = orjson.loads(raw)
    value = (raw or {}).get(key) if isinstance(raw, dict) else None
    return None if value is None else str(value)


def load_accounts(conn: Connection, id_key: str) -> list[SyncAccount]:
    """Every scored account with its values (scoring's and signals' results).

    ``id_key`` names where the account keeps this CRM's record id: an accounts column
    (``salesforce_id``) or, for a destination without one, a key of ``traits``."""
    a, s = accounts_t.c, scores_t.c
    in_column = id_key in a
    rows = conn.execute(
        select(
            s.account_id,
            s.score,
            s.band,
            # JSON as text (PostgreSQL's driver would decode it with the json module),
            # decoded below with orjson
            cast(s.segments, Text).label("segments"),
            s.active_integrations,
            s.reason,
            s.scored_at,
            a.mrr,
            a.name,
            a.domain,
            (a[id_key] if in_column else a.traits).label("crm_id"),
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
                segments=_segments(r.segments),
                active_integrations=int(r.active_integrations or 0),
                reason=r.reason,
                scored_at=as_utc(r.scored_at),
                mrr=float(r.mrr) if r.mrr is not None else None,
            ),
            name=r.name,
            domain=r.domain,
            crm_id=((r.crm_id if in_column else _trait(r.crm_id, id_key)) or "").strip() or None,
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
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def update_run(conn: Connection, run_id: int, **values: Any) -> None:
    conn.execute(update(runs_t).where(runs_t.c.id == run_id).values(**values))


def load_tasks(conn: Connection, account_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Playbook tasks of these accounts (all statuses, so completion is written too),
    except history a replay closed before anyone saw it (``claimed_by`` "replay")."""
    wanted = sorted(set(account_ids))
    t = tasks_t.c
    rows: list[dict[str, Any]] = []
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        rows += [
            dict(r._mapping)
            for r in conn.execute(
                select(t.id, t.account_id, t.signal_kind, t.title, t.body, t.status, t.due_at)
                .where(t.account_id.in_(part))
                .where(or_(t.claimed_by.is_(None), t.claimed_by != "replay"))
                .order_by(t.id)
            )
        ]
    return rows


def _pending_key(destination: str) -> str:
    return f"syncs:{destination}:pending_job"


def pending_job(conn: Connection, destination: str) -> str | None:
    kv = models.KeyValue.__table__
    row = conn.execute(select(kv.c.value).where(kv.c.key == _pending_key(destination))).first()
    return str(row.value["job_id"]) if row and row.value else None


def set_pending_job(
    conn: Connection, destination: str, job_id: str | None, *, now: datetime
) -> None:
    kv = models.KeyValue.__table__
    conn.execute(kv.delete().where(kv.c.key == _pending_key(destination)))
    if job_id is not None:
        conn.execute(
            kv.insert().values(
                key=_pending_key(destination), value={"job_id": job_id}, updated_at=now
            )
        )


def confirm_values(
    conn: Connection,
    destination: str,
    confirmed: Iterable[tuple[str, Mapping[str, str]]],
    *,
    run_id: int | None,
    now: datetime,
) -> int:
    """Enter writes confirmed outside a batch (an interrupted run's Bulk job)."""
    rows = [
        {
            "destination": destination,
            "record_id": record_id,
            "field": name,
            "value": value,
            "written_at": now,
            "run_id": run_id,
        }
        for record_id, values in confirmed
        for name, value in values.items()
    ]
    upsert(
        conn,
        ledger_t,
        rows,
        keys=["destination", "record_id", "field"],
        update=lambda ex: {"value": ex.value, "written_at": ex.written_at, "run_id": ex.run_id},
    )
    return len({r["record_id"] for r in rows})
