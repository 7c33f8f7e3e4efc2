"""Task transitions to contract 3 (`scoring.tasks.claim/done/snooze`), used only until
the signals branch's `scoring.tasks` is merged; then `bot.app` imports that instead
and this module is deleted.

Each transition is one conditional UPDATE, so two clicks racing each other change the
task once; a repeat by the same person is a no-op; anything else is refused with a
message meant for the person who clicked.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from store.models import Task, TaskEvent


class TaskRefused(Exception):
    """The task cannot make this change (done already, claimed by someone else)."""


def _load(conn: Any, task_id: int) -> Task:
    row = conn.execute(select(Task.__table__).where(Task.__table__.c.id == task_id)).first()
    if row is None:
        raise TaskRefused(f"task {task_id} does not exist")
    return Task(**dict(row._mapping))


def _change(
    engine: Engine,
    task_id: int,
    *,
    by: str,
    now: datetime,
    action: str,
    from_statuses: tuple[str, ...],
    values: dict[str, Any],
    noop: Callable[[Task], bool],
) -> Task:
    t = Task.__table__
    with engine.begin() as conn:
        before = _load(conn, task_id)
        result = conn.execute(
            update(t)
            .where(t.c.id == task_id, t.c.status.in_(from_statuses))
            .values(**values, updated_at=now)
        )
        if result.rowcount == 1:
            conn.execute(
                TaskEvent.__table__.insert().values(
                    task_id=task_id,
                    at=now,
                    actor=by,
                    action=action,
                    from_status=before.status,
                    to_status=values["status"],
                )
            )
            return _load(conn, task_id)
        current = _load(conn, task_id)
    if noop(current):
        return current
    if current.status == "done":
        raise TaskRefused(f"task {task_id} is already done")
    if current.status == "claimed":
        raise TaskRefused(f"task {task_id} is already claimed by {current.claimed_by}")
    raise TaskRefused(f"task {task_id} is {current.status}; it cannot be {action}ed")


def claim(engine: Engine, task_id: int, *, by: str, now: datetime, days: int = 7) -> Task:
    return _change(
        engine,
        task_id,
        by=by,
        now=now,
        action="claim",
        from_statuses=("open", "snoozed"),
        values={"status": "claimed", "claimed_by": by, "snoozed_until": None},
        noop=lambda t: t.status == "claimed" and t.claimed_by == by,
    )


def done(engine: Engine, task_id: int, *, by: str, now: datetime, days: int = 7) -> Task:
    return _change(
        engine,
        task_id,
        by=by,
        now=now,
        action="done",
        from_statuses=("open", "claimed", "snoozed"),
        values={"status": "done", "snoozed_until": None},
        noop=lambda t: t.status == "done",
    )


def snooze(engine: Engine, task_id: int, *, by: str, now: datetime, days: int = 7) -> Task:
    return _change(
        engine,
        task_id,
        by=by,
        now=now,
        action="snooze",
        from_statuses=("open", "claimed"),
        values={"status": "snoozed", "snoozed_until": now + timedelta(days=days)},
        noop=lambda t: t.status == "snoozed",
    )
