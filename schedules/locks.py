"""Once per tick across processes.

Each `serve` process runs its own APScheduler (APScheduler 3 cannot share a job store).
Before a job body runs, the runner takes a lock on the *job* and then claims the
*tick* as a ``job_runs`` row keyed by (job_id, scheduled_at):

- PostgreSQL: a session-level advisory lock per job id, held on a dedicated
  connection for the length of the run. It is released when the run ends or when the
  process dies (the server ends the session), so a kill -9 never leaves it stuck.
- SQLite: one `serve` process only (``InstanceLock``, an exclusive ``flock`` on a file
  beside the database that the kernel releases when the process dies); inside that
  process a thread lock per job.

Because whoever holds the job lock is the only live runner of that job, any row still
``running`` when the lock is taken belongs to a dead process: it is marked
``abandoned``, and its tick is run again (the jobs are idempotent: ingest dedupes by
event id, syncs diff against their ledger, Slack posting records what it posted).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, and_, select, update
from sqlalchemy.exc import IntegrityError

from integration_signals.schedules.exceptions import AlreadyServing
from integration_signals.store.engine import is_sqlite
from integration_signals.store.models import JobRun
from integration_signals.store.sql import as_utc, utcnow

log = logging.getLogger("signals.schedules")

RUNNING, OK, FAILED, ABANDONED = "running", "ok", "failed", "abandoned"


def host_id() -> str:
    """Who runs a tick, as recorded in job_runs: host name and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def advisory_key(job_id: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, the same in every process."""
    digest = hashlib.sha256(f"signals-job:{job_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class InstanceLock:
    """For SQLite: at most one `serve` process per database file.

    An exclusive, non-blocking ``flock`` on ``<database>.serve.lock``; the file records
    who holds it so a refused second process can say so.
    """

    def __init__(self, engine: Engine) -> None:
        self.path: Path | None = None
        self._handle: int | None = None
        database = engine.url.database
        if is_sqlite(engine) and database and database != ":memory:":
            self.path = Path(database).resolve().with_name(Path(database).name + ".serve.lock")

    def acquire(self) -> None:
        if self.path is None:
            return
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise AlreadyServing(
                f"`signals serve` is already running on this SQLite database ({holder}); "
                "SQLite allows one serve process: stop that one, or use PostgreSQL "
                "(SIGNALS_DATABASE_URL=postgresql://...) to run several"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        self._handle = fd

    def release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)  # closing drops the flock
            self._handle = None


@dataclass
class Claim:
    """A tick this process now runs: the job_runs row id, and whether it resumes a tick
    another (dead or stopped) run left unfinished."""

    run_id: int
    resumed_from: str | None = None


class TickLocks:
    """Job locks and tick claims on one database."""

    def __init__(self, engine: Engine, *, host: str | None = None) -> None:
        self.engine = engine
        self.host = host or host_id()
        self._local: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # ------------------------------------------------------------ the job lock

    @contextlib.contextmanager
    def job_lock(self, job_id: str) -> Iterator[bool]:
        """Try to become the only runner of ``job_id``; yields whether it worked."""
        with self._guard:
            local = self._local.setdefault(job_id, threading.Lock())
        if not local.acquire(blocking=False):
            yield False
            return
        try:
            if is_sqlite(self.engine):
                yield True  # the InstanceLock makes this process the only one
                return
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                key = advisory_key(job_id)
                got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})").scalar()
                if not got:
                    yield False
                    return
                try:
                    yield True
                finally:
                    with contextlib.suppress(Exception):
                        conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
        finally:
            local.release()

    # ------------------------------------------------------------ tick rows

    def claim(self, job_id: str, tick: datetime, *, retry_failed: bool = False) -> Claim | None:
        """Claim ``tick`` of ``job_id`` (the job lock must be held). Returns None when the
        tick was already done — or already tried and failed, unless ``retry_failed``."""
        t = JobRun.__table__
        now = utcnow()
        with self.engine.begin() as conn:
            dead = conn.execute(
                update(t)
                .where(and_(t.c.job_id == job_id, t.c.status == RUNNING))
                .values(
                    status=ABANDONED,
                    finished_at=now,
                    error="abandoned: the process running it stopped or died; the tick is run again",
                )
                .returning(t.c.scheduled_at, t.c.host)
            ).all()
            for row in dead:
                log.warning(
                    "job %s: tick %s was left running by %s, which is gone; marked abandoned",
                    job_id,
                    _iso(row.scheduled_at),
                    row.host,
                )
        try:
            with self.engine.begin() as conn:
                run_id = conn.execute(
                    t.insert()
                    .values(
                        job_id=job_id,
                        scheduled_at=tick,
                        started_at=now,
                        status=RUNNING,
                        host=self.host,
                    )
                    .returning(t.c.id)
                ).scalar_one()
            return Claim(run_id)
        except IntegrityError:
            pass
        with self.engine.begin() as conn:
            row = conn.execute(
                select(t.c.id, t.c.status, t.c.host).where(
                    t.c.job_id == job_id, t.c.scheduled_at == tick
                )
            ).one_or_none()
            if row is None:  # pruned in between: nothing to resume
                return None
            resumable = {ABANDONED} | ({FAILED} if retry_failed else set())
            if row.status not in resumable:
                return None
            conn.execute(
                update(t)
                .where(t.c.id == row.id)
                .values(
                    started_at=now, finished_at=None, status=RUNNING, error=None, host=self.host
                )
            )
        return Claim(row.id, resumed_from=f"{row.status} run of {row.host}")

    def finish(self, run_id: int, status: str, error: str | None = None) -> None:
        t = JobRun.__table__
        with self.engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.id == run_id)
                .values(status=status, finished_at=utcnow(), error=error)
            )

    def tick_done(self, job_id: str, tick: datetime) -> bool:
        t = JobRun.__table__
        with self.engine.connect() as conn:
            status = conn.execute(
                select(t.c.status).where(t.c.job_id == job_id, t.c.scheduled_at == tick)
            ).scalar_one_or_none()
        return status == OK

    def has_history(self, job_id: str) -> bool:
        t = JobRun.__table__
        with self.engine.connect() as conn:
            return (
                conn.execute(select(t.c.id).where(t.c.job_id == job_id).limit(1)).first()
                is not None
            )


def _iso(value: datetime | None) -> str:
    value = as_utc(value)
    return value.isoformat() if value else "?"
