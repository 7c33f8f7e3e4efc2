"""The scheduler of one `serve` process: APScheduler for *when*, ``TickLocks`` for
*who* (once per tick across processes), one error listener for *what went wrong*.

Every process computes the same ticks (interval triggers anchored at a fixed instant,
``jobs.anchor``), so a tick has one key, (job id, scheduled time), in every process.
At start-up a job runs at once for the current tick when it asks to (task posting) or
when its current tick is not done although it ran before (a tick missed while no process
was up, or abandoned by a killed one): a restart neither loses nor repeats a tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, func, select

from integration_signals.config import Config, Settings
from integration_signals.schedules.exceptions import JobFailed, Stopping
from integration_signals.schedules.jobs import JobContext, JobSpec, anchor, tick_of
from integration_signals.schedules.locks import ABANDONED, FAILED, OK, RUNNING, TickLocks
from integration_signals.schedules.logs import log_context
from integration_signals.store.jsonio import dumps
from integration_signals.store.models import JobRun
from integration_signals.store.sql import as_utc, utcnow
from integration_signals.syncs import registry

log = logging.getLogger("signals.schedules")

Alert = Callable[[str], None]
# Told of every finished run: (job id, "ok" | "failed" | "stopped", seconds, summary).
Observer = Callable[[str, str, float, Any], None]


def secrets(settings: Settings) -> list[str]:
    """Every secret value: the settings' own (ingest token, Slack, the pull URL's
    password) and every CRM destination's (registered with Settings when found)."""
    registry.destinations()
    return settings.secret_values()


def redact(text: str, settings: Settings) -> str:
    """``text`` with every secret value blanked out: the settings' own (ingest token,
    Slack) and every CRM destination's."""
    registry.destinations()  # discovered: their secrets are registered with Settings
    return settings.redact(text) or text


def one_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}"[:500]


@dataclass
class _Health:
    failures: int = 0
    alerted: bool = False
    last_error: str | None = None


class Scheduler:
    """Runs ``jobs`` on their ticks in this process; safe to run in several processes."""

    def __init__(
        self,
        engine: Engine,
        config: Config,
        settings: Settings,
        jobs: list[JobSpec],
        *,
        alert: Alert | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.settings = settings
        self.specs = {spec.id: spec for spec in jobs}
        self.locks = TickLocks(engine)
        self.alert = alert
        self.stopping = threading.Event()
        self.started_at: datetime | None = None
        self._health = {spec.id: _Health() for spec in jobs}
        self._running: dict[str, int] = {}
        self._running_guard = threading.Lock()
        self.leftovers: list[str] = []
        self._observers: list[Observer] = []
        grace = config.schedules.misfire_grace_seconds
        self._aps = BackgroundScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(max_workers=2 * len(jobs) + 2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(grace)},
        )
        self._aps.add_listener(
            self._on_event,
            EVENT_JOB_ERROR | EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES,
        )
        # The listener below writes the one line per failure; APScheduler's own
        # traceback would repeat it.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.CRITICAL)

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer`` after every run this process finishes (metrics)."""
        self._observers.append(observer)

    def _observe(self, job_id: str, status: str, seconds: float, result: Any) -> None:
        for observer in self._observers:
            try:
                observer(job_id, status, seconds, result)
            except Exception as exc:  # recording a run must never fail the run
                log.error("job %s: an observer failed: %s", job_id, one_line(exc))

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        now = utcnow()
        self.started_at = now
        start = anchor(self.config)
        for spec in self.specs.values():
            self._aps.add_job(
                self._run,
                IntervalTrigger(
                    seconds=spec.interval.total_seconds(), start_date=start, timezone="UTC"
                ),
                args=[spec.id],
                id=spec.id,
                name=spec.description,
                replace_existing=True,
            )
        for spec in self.specs.values():
            tick = tick_of(spec, self.config, now)
            if self.locks.tick_done(spec.id, tick):
                continue
            if spec.at_start or self.locks.has_history(spec.id):
                self._aps.add_job(
                    self._run,
                    "date",
                    run_date=now,
                    args=[spec.id, tick, True],
                    id=f"{spec.id}@start",
                    name=f"{spec.description} (start-up)",
                    replace_existing=True,
                )
        self._aps.start()
        log.info(
            "scheduler started with %d jobs: %s",
            len(self.specs),
            ", ".join(f"{s.id} every {_every(s.interval)}" for s in self.specs.values()),
        )

    def stop(self, grace: float | None = None) -> list[str]:
        """Stop scheduling, let running jobs finish for up to ``grace`` seconds (they are
        asked to stop between units of work), then mark what still runs abandoned so the
        next start runs those ticks again. Returns the ids of abandoned jobs."""
        grace = self.config.schedules.shutdown_grace_seconds if grace is None else grace
        self.stopping.set()
        if self._aps.running:
            self._aps.shutdown(wait=False)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with self._running_guard:
                if not self._running:
                    break
            time.sleep(0.05)
        with self._running_guard:
            leftovers = dict(self._running)
        for job_id, run_id in leftovers.items():
            self.locks.finish(
                run_id,
                ABANDONED,
                f"abandoned at shutdown after {grace:g}s; the next start runs the tick again",
            )
            log.warning("job %s still running at shutdown: abandoned; next start reruns it", job_id)
        self.leftovers = list(leftovers)
        log.info("scheduler stopped")
        return self.leftovers

    # ------------------------------------------------------------ running a tick

    def run_now(self, job_id: str, *, tick: datetime | None = None) -> str:
        """Run one tick of ``job_id`` in the calling thread (tests, `serve` start-up)."""
        return self._run(job_id, tick, True)

    def _run(self, job_id: str, tick: datetime | None = None, catch_up: bool = False) -> str:
        spec = self.specs[job_id]
        tick = tick or tick_of(spec, self.config, utcnow())
        # Another process may be running this job (an earlier tick that is taking
        # long, or this tick): wait for it, at most until the next tick is due.
        deadline = time.monotonic() + min(
            spec.interval.total_seconds(), self.config.schedules.misfire_grace_seconds
        )
        while not self.stopping.is_set():
            with self.locks.job_lock(job_id) as got:
                if got:
                    return self._run_locked(spec, tick, catch_up)
            if time.monotonic() > deadline:
                log.info("job %s tick %s: another runner still busy; skipped", job_id, _iso(tick))
                return "busy"
            self.stopping.wait(0.2)
        return "stopping"

    def _run_locked(self, spec: JobSpec, tick: datetime, catch_up: bool) -> str:
        claim = self.locks.claim(spec.id, tick, retry_failed=catch_up)
        if claim is None:
            return "done-elsewhere"
        if claim.resumed_from:
            log.warning(
                "job %s tick %s: resuming after a %s", spec.id, _iso(tick), claim.resumed_from
            )
        with log_context(job=spec.id, run_id=claim.run_id):
            return self._run_claimed(spec, tick, claim.run_id)

    def _run_claimed(self, spec: JobSpec, tick: datetime, run_id: int) -> str:
        ctx = JobContext(spec.id, tick, utcnow(), self.stopping, alert=self._send_alert)
        with self._running_guard:
            self._running[spec.id] = run_id
        started = time.monotonic()
        try:
            result = spec.func(ctx)
        except Stopping as exc:
            self.locks.finish(run_id, ABANDONED, f"stopped at shutdown: {exc}")
            log.warning("job %s tick %s stopped at shutdown: %s", spec.id, _iso(tick), exc)
            self._observe(spec.id, "stopped", time.monotonic() - started, None)
            return "stopped"
        except Exception as exc:
            message = redact(one_line(exc), self.settings)
            self.locks.finish(run_id, FAILED, message)
            self._observe(spec.id, "failed", time.monotonic() - started, None)
            raise JobFailed(message) from None
        finally:
            with self._running_guard:
                self._running.pop(spec.id, None)
        self.locks.finish(run_id, OK)
        took = time.monotonic() - started
        log.info(
            "job %s tick %s ok in %.2fs on %s: %s",
            spec.id,
            _iso(tick),
            took,
            self.locks.host,
            redact(dumps(result, indent=False), self.settings)[:1000] if result else "-",
        )
        self._observe(spec.id, "ok", took, result)
        return "ok"

    # ------------------------------------------------------------ the one listener

    def _on_event(self, event: JobEvent) -> None:
        job_id = event.job_id.split("@", 1)[0]
        health = self._health.get(job_id)
        if health is None:
            return
        if event.code == EVENT_JOB_ERROR:
            health.failures += 1
            health.last_error = str(event.exception)
            log.error(
                "job %s failed (%d in a row), retried next tick: %s",
                job_id,
                health.failures,
                health.last_error,
                extra={"job": job_id},
            )
            threshold = self.config.schedules.alert_after_failures
            if health.failures >= threshold and not health.alerted:
                health.alerted = True
                self._send_alert(
                    f":rotating_light: Integration Signals job `{job_id}` failed "
                    f"{health.failures} times in a row on {self.locks.host}: {health.last_error}"
                )
        elif event.code == EVENT_JOB_EXECUTED and getattr(event, "retval", None) == "ok":
            if health.alerted:
                self._send_alert(f":white_check_mark: job `{job_id}` succeeded again")
            health.failures, health.alerted = 0, False
        elif event.code in (EVENT_JOB_MISSED, EVENT_JOB_MAX_INSTANCES):
            log.warning("job %s: a tick was skipped (%s)", job_id, _event_name(event.code))

    def _send_alert(self, text: str) -> None:
        log.error("alert: %s", text)
        if self.alert is None:
            return
        try:
            self.alert(redact(text, self.settings))
        except Exception as exc:  # an alert that cannot be sent must not stop the scheduler
            log.error("could not send the alert to Slack: %s", redact(one_line(exc), self.settings))

    # ------------------------------------------------------------ status

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        """Each job's last run, last success, next run, last error and stale flag."""
        now = now or utcnow()
        t = JobRun.__table__
        stale_after = self.config.schedules.stale_after_intervals
        jobs: dict[str, Any] = {}
        with self.engine.connect() as conn:
            for spec in self.specs.values():
                last = conn.execute(
                    select(t)
                    .where(t.c.job_id == spec.id, t.c.status != RUNNING)
                    .order_by(t.c.scheduled_at.desc())
                    .limit(1)
                ).first()
                last_ok = conn.execute(
                    select(func.max(t.c.finished_at)).where(t.c.job_id == spec.id, t.c.status == OK)
                ).scalar()
                last_failed = conn.execute(
                    select(t.c.error, t.c.finished_at)
                    .where(t.c.job_id == spec.id, t.c.status.in_((FAILED, ABANDONED)))
                    .order_by(t.c.scheduled_at.desc())
                    .limit(1)
                ).first()
                running = conn.execute(
                    select(t.c.host, t.c.started_at).where(
                        t.c.job_id == spec.id, t.c.status == RUNNING
                    )
                ).first()
                aps_job = self._aps.get_job(spec.id) if self._aps.running else None
                since = as_utc(last_ok) or self.started_at or now
                jobs[spec.id] = {
                    "description": spec.description,
                    "interval_seconds": spec.interval.total_seconds(),
                    "last_run": None
                    if last is None
                    else {
                        "scheduled_at": as_utc(last.scheduled_at),
                        "started_at": as_utc(last.started_at),
                        "finished_at": as_utc(last.finished_at),
                        "status": last.status,
                        "host": last.host,
                    },
                    "last_success_at": as_utc(last_ok),
                    "last_error": None if last_failed is None else last_failed.error,
                    "last_error_at": None
                    if last_failed is None
                    else as_utc(last_failed.finished_at),
                    "running": None
                    if running is None
                    else {"host": running.host, "since": as_utc(running.started_at)},
                    "next_run_at": as_utc(aps_job.next_run_time) if aps_job else None,
                    "consecutive_failures": self._health[spec.id].failures,
                    "stale": now - since > spec.interval * stale_after,
                }
        return jobs


def _every(interval: timedelta) -> str:
    seconds = interval.total_seconds()
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}min"
    return f"{seconds:g}s"


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _event_name(code: int) -> str:
    return "missed its misfire grace time" if code == EVENT_JOB_MISSED else "still running"
