"""The playbook task lifecycle: open -> claimed -> done, snoozed -> open, overdue once.

Every change writes a ``task_events`` row (who, when, from -> to). The operations are
idempotent for the same person (a double click changes nothing) and refuse, with a
message saying why and what to do, what would take a task from someone else. Each
change is a conditional UPDATE on the status it was decided from, so two concurrent
clicks cannot both win.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, case, select, update
from sqlalchemy.engine import Connection

from integration_signals.scoring.exceptions import TaskRefused
from integration_signals.store.models import Account, AccountScore, ScoreHistory, Task, TaskEvent
from integration_signals.store.sql import as_utc, chunked

OPEN, CLAIMED, DONE, SNOOZED = "open", "claimed", "done", "snoozed"
STATUSES = (OPEN, CLAIMED, DONE, SNOOZED)
SYSTEM = "system"
MAX_SNOOZE_DAYS = 90
_RETRIES = 5


def record_event(
    conn: Connection,
    task_id: int,
    *,
    at: datetime,
    actor: str,
    action: str,
    from_status: str | None,
    to_status: str | None,
    note: str | None = None,
) -> None:
    conn.execute(
        TaskEvent.__table__.insert().values(
            task_id=task_id,
            at=at,
            actor=actor,
            action=action,
            from_status=from_status,
            to_status=to_status,
            note=note,
        )
    )


def _load(conn: Connection, task_id: int) -> Any:
    t = Task.__table__
    row = conn.execute(select(t).where(t.c.id == task_id)).one_or_none()
    if row is None:
        raise TaskRefused(
            f"task {task_id} does not exist; list tasks with `signals tasks`", task_id=task_id
        )
    return row


def _last_actor(conn: Connection, task_id: int, to_status: str) -> str | None:
    e = TaskEvent.__table__
    return conn.execute(
        select(e.c.actor)
        .where(e.c.task_id == task_id, e.c.to_status == to_status)
        .order_by(e.c.at.desc(), e.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _holder(row: Any) -> str | None:
    """Who the task belongs to right now: its claimer, while claimed or snoozed."""
    return row.claimed_by if row.status in (CLAIMED, SNOOZED) else None


def _as_task(row: Any) -> Task:
    data = dict(row._mapping)
    for key in ("due_at", "snoozed_until", "overdue_at", "reminded_at", "created_at"):
        data[key] = as_utc(data[key])
    data["updated_at"] = as_utc(data["updated_at"])
    data["posted_at"] = as_utc(data["posted_at"])
    return Task.model_validate(data)


def _transition(
    engine: Engine,
    task_id: int,
    *,
    by: str,
    now: datetime,
    action: str,
    decide: Any,
) -> Task:
    """Load, decide (None = nothing to change, dict = new values), apply if the status
    is still the one decided from; retry on a lost race."""
    by = (by or "").strip()
    if not by:
        raise TaskRefused(f"say who is acting on task {task_id} (--by USER)", task_id=task_id)
    t = Task.__table__
    for _ in range(_RETRIES):
        with engine.begin() as conn:
            row = _load(conn, task_id)
            change = decide(conn, row)
            if change is None:
                return _as_task(row)
            values = {**change, "updated_at": now}
            result = conn.execute(
                update(t)
                .where(and_(t.c.id == task_id, t.c.status == row.status))
                .where(
                    t.c.claimed_by.is_(None)
                    if row.claimed_by is None
                    else t.c.claimed_by == row.claimed_by
                )
                .values(**values)
            )
            if result.rowcount != 1:
                continue
            note = None
            if values.get("snoozed_until") is not None:
                note = f"until {values['snoozed_until'].isoformat()}"
            record_event(
                conn,
                task_id,
                at=now,
                actor=by,
                action=action,
                from_status=row.status,
                to_status=values["status"],
                note=note,
            )
            return _as_task(_load(conn, task_id))
    raise TaskRefused(
        f"task {task_id} kept changing while {action} was tried; try again", task_id=task_id
    )


def claim(engine: Engine, task_id: int, *, by: str, now: datetime) -> Task:
    """Take a task. The same person claiming again changes nothing; someone else's
    claim or a finished task is refused."""

    def decide(conn: Connection, row: Any) -> dict[str, Any] | None:
        if row.status == DONE:
            who = _last_actor(conn, task_id, DONE)
            raise TaskRefused(
                f"task {task_id} is already done (by {who}); nothing to claim",
                task_id=task_id,
                status=row.status,
            )
        holder = _holder(row)
        if holder is not None and holder != by:
            raise TaskRefused(
                f"task {task_id} is already claimed by {holder}; ask them to hand it"
                " over or pick another task",
                task_id=task_id,
                status=row.status,
            )
        if row.status == CLAIMED:
            return None
        return {"status": CLAIMED, "claimed_by": by, "snoozed_until": None}

    return _transition(engine, task_id, by=by, now=now, action="claim", decide=decide)


def done(engine: Engine, task_id: int, *, by: str, now: datetime) -> Task:
    """Finish a task. Done again by the same person changes nothing; a task claimed by
    someone else is theirs to finish."""

    def decide(conn: Connection, row: Any) -> dict[str, Any] | None:
        if row.status == DONE:
            who = _last_actor(conn, task_id, DONE)
            if who == by:
                return None
            raise TaskRefused(
                f"task {task_id} was already done by {who}", task_id=task_id, status=row.status
            )
        holder = _holder(row)
        if holder is not None and holder != by:
            raise TaskRefused(
                f"task {task_id} is claimed by {holder}; only they can mark it done"
                " (ask them, or have them hand it over)",
                task_id=task_id,
                status=row.status,
            )
        return {"status": DONE, "claimed_by": row.claimed_by or by, "snoozed_until": None}

    return _transition(engine, task_id, by=by, now=now, action="done", decide=decide)


def snooze(engine: Engine, task_id: int, *, by: str, now: datetime, days: int = 7) -> Task:
    """Put a task away for ``days``; it returns to open when that time passes. Snoozing
    again by the same person changes nothing (the first snooze's time stands)."""
    if not 1 <= days <= MAX_SNOOZE_DAYS:
        raise TaskRefused(
            f"snooze task {task_id} for 1 to {MAX_SNOOZE_DAYS} days, not {days}",
            task_id=task_id,
        )

    def decide(conn: Connection, row: Any) -> dict[str, Any] | None:
        if row.status == DONE:
            raise TaskRefused(
                f"task {task_id} is already done; nothing to snooze",
                task_id=task_id,
                status=row.status,
            )
        holder = _holder(row)
        if holder is not None and holder != by:
            raise TaskRefused(
                f"task {task_id} is claimed by {holder}; only they can snooze it",
                task_id=task_id,
                status=row.status,
            )
        if row.status == SNOOZED:
            who = _last_actor(conn, task_id, SNOOZED)
            if who == by:
                return None
            until = as_utc(row.snoozed_until)
            raise TaskRefused(
                f"task {task_id} is already snoozed by {who} until"
                f" {until.isoformat() if until else '?'}",
                task_id=task_id,
                status=row.status,
            )
        return {"status": SNOOZED, "snoozed_until": now + timedelta(days=days)}

    return _transition(engine, task_id, by=by, now=now, action="snooze", decide=decide)


def sweep(conn: Connection, *, now: datetime) -> tuple[int, int]:
    """Snoozed tasks whose time has passed return to open (or to claimed, when someone
    had claimed them); open or claimed tasks past
    their due time are marked overdue, once. Returns (reopened, marked overdue)."""
    t = Task.__table__
    reopened = 0
    due_back = conn.execute(
        select(t.c.id, t.c.claimed_by).where(t.c.status == SNOOZED, t.c.snoozed_until <= now)
    ).all()
    for task_id, claimed_by in due_back:
        back_to = CLAIMED if claimed_by else OPEN
        result = conn.execute(
            update(t)
            .where(t.c.id == task_id, t.c.status == SNOOZED)
            .values(status=back_to, snoozed_until=None, updated_at=now)
        )
        if result.rowcount == 1:
            reopened += 1
            record_event(
                conn,
                task_id,
                at=now,
                actor=SYSTEM,
                action="unsnooze",
                from_status=SNOOZED,
                to_status=back_to,
                note="snooze ended",
            )
    late = list(
        conn.execute(
            select(t.c.id, t.c.status).where(
                t.c.status.in_((OPEN, CLAIMED)), t.c.overdue_at.is_(None), t.c.due_at < now
            )
        )
    )
    marked = 0
    for task_id, status in late:
        result = conn.execute(
            update(t)
            .where(t.c.id == task_id, t.c.overdue_at.is_(None))
            .values(overdue_at=now, updated_at=now)
        )
        if result.rowcount == 1:
            marked += 1
            record_event(
                conn,
                task_id,
                at=now,
                actor=SYSTEM,
                action="overdue",
                from_status=status,
                to_status=status,
            )
    return reopened, marked


# ---------------------------------------------------------------- as of a moment


def _state_from_events(row: Any, events: list[Any]) -> dict[str, Any]:
    """A task's status, holder, snooze and overdue mark rebuilt from its history rows
    (oldest first, all at or before the moment asked about)."""
    state: dict[str, Any] = {
        "status": OPEN,
        "claimed_by": None,
        "snoozed_until": None,
        "overdue_at": None,
        "updated_at": as_utc(row.created_at),
    }
    for ev in events:
        if ev.to_status is not None:
            state["status"] = ev.to_status
        at = as_utc(ev.at)
        if ev.action == "claim":
            state["claimed_by"], state["snoozed_until"] = ev.actor, None
        elif ev.action == "done":
            state["claimed_by"] = state["claimed_by"] or ev.actor
            state["snoozed_until"] = None
        elif ev.action == "close":
            if ev.actor != SYSTEM:  # a replay's "resolved before it was seen"
                state["claimed_by"] = ev.actor
                state["overdue_at"] = None
            state["snoozed_until"] = None
        elif ev.action == "snooze":
            until = None
            if ev.note and ev.note.startswith("until "):
                try:
                    until = as_utc(datetime.fromisoformat(ev.note[len("until ") :]))
                except ValueError:
                    until = None
            state["snoozed_until"] = until
        elif ev.action == "unsnooze":
            state["snoozed_until"] = None
        elif ev.action == "overdue":
            state["overdue_at"] = state["overdue_at"] or at
        if ev.action != "overdue":
            state["updated_at"] = at
    return state


def band_at(account_id: Any, as_of: datetime) -> ColumnElement[Any]:
    """The account's band as it was at ``as_of``, as a column expression over a query
    that joins ``account_scores`` (for ``account_id``): the current band when the
    current score is not newer than ``as_of``, else the band of the newest
    ``score_history`` row at or before ``as_of`` (None: not scored yet then). What
    every view of a moment shows next to a task or a signal, so a band that changed
    after T does not leak into a page of T. One indexed look-up per row
    (``ix_score_history_account_asof``)."""
    sc, h = AccountScore.__table__, ScoreHistory.__table__
    then = (
        select(h.c.band)
        .where(h.c.account_id == account_id, h.c.as_of <= as_of)
        .order_by(h.c.as_of.desc(), h.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return case((sc.c.as_of <= as_of, sc.c.band), else_=then)


def tasks_as_of(
    conn: Connection,
    *,
    as_of: datetime,
    account_ids: Any = None,
    owner: str | None = None,
    statuses: Any = None,
) -> list[dict[str, Any]]:
    """Tasks created at or before ``as_of`` with their status as it was then — the one
    query `signals tasks`, `signals health` (and the account page) and the task queue
    ask, so they agree at every moment.

    The status, ``claimed_by``, ``snoozed_until`` and ``overdue_at`` come from the
    task's ``task_events`` history: the row with the latest ``at`` at or before
    ``as_of`` gives the status. A task with nothing in its history after ``as_of`` is
    as its row is now. Each result is the task's columns (as of ``as_of``) plus
    ``account_name``, ``account_segment`` and ``account_band`` (the band as of then,
    ``band_at``); ordered by due time, then id. ``owner`` matches exactly; ``statuses``
    keeps only those statuses as of then."""
    as_of = as_utc(as_of)  # type: ignore[assignment]
    t, a, sc = Task.__table__, Account.__table__, AccountScore.__table__
    e = TaskEvent.__table__
    stmt = (
        select(
            t,
            a.c.name.label("account_name"),
            a.c.segment.label("account_segment"),
            band_at(t.c.account_id, as_of).label("account_band"),
        )
        .select_from(
            t.outerjoin(a, a.c.account_id == t.c.account_id).outerjoin(
                sc, sc.c.account_id == t.c.account_id
            )
        )
        .where(t.c.created_at <= as_of)
    )
    if owner is not None:
        stmt = stmt.where(t.c.owner == owner)
    rows: list[Any] = []
    if account_ids is None:
        rows = list(conn.execute(stmt))
    else:
        for part in chunked(sorted(set(account_ids)), 500):
            rows.extend(conn.execute(stmt.where(t.c.account_id.in_(part))))
    ids = [r.id for r in rows]
    later: set[int] = set()
    history: dict[int, list[Any]] = {}
    for part in chunked(ids, 500):
        later.update(
            conn.execute(
                select(e.c.task_id).where(e.c.task_id.in_(part), e.c.at > as_of).distinct()
            ).scalars()
        )
    rebuild = [i for i in ids if i in later]
    for part in chunked(rebuild, 500):
        for ev in conn.execute(
            select(e.c.task_id, e.c.at, e.c.actor, e.c.action, e.c.to_status, e.c.note)
            .where(e.c.task_id.in_(part), e.c.at <= as_of)
            .order_by(e.c.task_id, e.c.at, e.c.id)
        ):
            history.setdefault(ev.task_id, []).append(ev)
    wanted = None if statuses is None else set(statuses)
    out = []
    for r in rows:
        task = dict(r._mapping)
        for key in ("due_at", "snoozed_until", "overdue_at", "reminded_at", "created_at"):
            task[key] = as_utc(task[key])
        task["updated_at"] = as_utc(task["updated_at"])
        task["posted_at"] = as_utc(task["posted_at"])
        if r.id in later:
            task.update(_state_from_events(r, history.get(r.id, [])))
        for key in ("reminded_at", "posted_at"):
            if task[key] is not None and task[key] > as_of:
                task[key] = None
        if task["overdue_at"] is not None and task["overdue_at"] > as_of:
            task["overdue_at"] = None
        if wanted is not None and task["status"] not in wanted:
            continue
        out.append(task)
    far = datetime.max.replace(tzinfo=as_of.tzinfo)
    out.sort(key=lambda x: (x["due_at"] is None, x["due_at"] or far, x["id"]))
    return out
