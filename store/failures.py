"""Per-item failure state of scheduled and batch jobs (table ``item_failures``).

A job works through items (tasks to post, reminders, a day's digest, CRM records). When
one item fails, for whatever reason, the job records it here and goes on with the
others. The item is held back until ``next_attempt_at`` (a backoff that doubles with
every failure in a row, up to a ceiling), and at its Nth failure in a row exactly one
process wins the right to alert about it (``alerted_at`` is claimed with a conditional
UPDATE). A success deletes the row, so a later failure starts counting again.

Keys are strings chosen by each job: ``("tasks.post", "42")``,
``("sync.salesforce", "001A000001")``, ``("tasks.digest", "2026-11-20")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, select, update

from integration_signals.config import Config
from integration_signals.store.models import ItemFailure
from integration_signals.store.sql import as_utc, insert_for

ERROR_MAX = 500


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed item is tried again, and after how many failures in a row it is
    alerted. ``[schedules] item_retry_minutes``, ``item_retry_max_minutes`` and
    ``item_alert_after``."""

    first_delay: timedelta = timedelta(minutes=1)
    max_delay: timedelta = timedelta(minutes=60)
    alert_after: int = 3

    @classmethod
    def from_config(cls, config: Config) -> RetryPolicy:
        sched = config.schedules
        return cls(
            first_delay=timedelta(minutes=sched.item_retry_minutes),
            max_delay=timedelta(minutes=sched.item_retry_max_minutes),
            alert_after=sched.item_alert_after,
        )

    def delay(self, failures: int) -> timedelta:
        """The wait after the ``failures``-th failure in a row: 1x, 2x, 4x ... the first
        delay, never more than the ceiling."""
        exponent = min(max(failures - 1, 0), 30)
        return min(self.first_delay * (2**exponent), self.max_delay)


@dataclass(frozen=True)
class Failed:
    """What recording one failure decided."""

    job: str
    item: str
    failures: int  # in a row, this one included
    error: str
    next_attempt_at: datetime
    alert: bool  # this call won the one alert for this streak: send it

    def alert_text(self, what: str) -> str:
        """The one alert: what failed, how often, why, and when it is tried again."""
        return (
            f":warning: Integration Signals `{self.job}`: {what} failed {self.failures} times"
            f" in a row: {self.error}. The other items go on; it is retried from"
            f" {_iso(self.next_attempt_at)}."
        )


def held_back(conn: Connection, job: str, *, now: datetime) -> set[str]:
    """Items of ``job`` still waiting out their backoff at ``now``."""
    t = ItemFailure.__table__
    return set(
        conn.execute(select(t.c.item).where(t.c.job == job, t.c.next_attempt_at > now)).scalars()
    )


def record_failure(
    engine: Engine,
    job: str,
    item: str,
    error: str,
    *,
    now: datetime,
    policy: RetryPolicy,
) -> Failed:
    """Count one more failure of ``item`` with its reason and hold it back; ``alert``
    is True for the one caller that should send this streak's alert."""
    t = ItemFailure.__table__
    error = (error.strip() or "failed without a message")[:ERROR_MAX]
    with engine.begin() as conn:
        # Two statements, both atomic per row: count (insert or increment), then read.
        stmt = insert_for(conn, t).values(
            job=job,
            item=item,
            failures=1,
            last_error=error,
            first_failed_at=now,
            last_failed_at=now,
            next_attempt_at=now + policy.delay(1),
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["job", "item"],
                set_={
                    "failures": t.c.failures + 1,
                    "last_error": error,
                    "last_failed_at": now,
                },
            )
        )
        failures = int(
            conn.execute(select(t.c.failures).where(t.c.job == job, t.c.item == item)).scalar_one()
        )
        next_at = now + policy.delay(failures)
        conn.execute(
            update(t).where(t.c.job == job, t.c.item == item).values(next_attempt_at=next_at)
        )
        alert = False
        if failures >= policy.alert_after:
            alert = (
                conn.execute(
                    update(t)
                    .where(t.c.job == job, t.c.item == item, t.c.alerted_at.is_(None))
                    .values(alerted_at=now)
                ).rowcount
                == 1
            )
    return Failed(job, item, failures, error, next_at, alert)


def record_success(engine: Engine, job: str, item: str) -> None:
    """The item went through: forget its failures."""
    t = ItemFailure.__table__
    with engine.begin() as conn:
        conn.execute(delete(t).where(t.c.job == job, t.c.item == item))


def record_successes(engine: Engine, job: str, items: list[str]) -> None:
    """Forget the failures of every item in ``items`` (one statement)."""
    if not items:
        return
    t = ItemFailure.__table__
    with engine.begin() as conn:
        for start in range(0, len(items), 500):
            conn.execute(delete(t).where(t.c.job == job, t.c.item.in_(items[start : start + 500])))


def failing(conn: Connection, job: str | None = None) -> list[dict[str, object]]:
    """Every item with failures in a row (of ``job``), most failures first."""
    t = ItemFailure.__table__
    stmt = select(t).order_by(t.c.failures.desc(), t.c.job, t.c.item)
    if job is not None:
        stmt = stmt.where(t.c.job == job)
    rows = []
    for row in conn.execute(stmt):
        item = dict(row._mapping)
        for key in ("first_failed_at", "last_failed_at", "next_attempt_at", "alerted_at"):
            item[key] = as_utc(item[key])
        rows.append(item)
    return rows


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
