"""The job registry: stable ids, intervals from config, and plain callables.

A job is a function of a ``JobContext`` returning a small summary (logged). Which jobs
exist depends on what is configured: CRM syncs only with their credentials, Slack
jobs only with a bot token, the pull only with a source. This layer composes the ones
below it (scoring, syncs, bot), which always ship together.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, delete

from integration_signals.bot import tasks as bot_tasks
from integration_signals.config import Config, Settings
from integration_signals.schedules.logs import log_context
from integration_signals.schedules.pipeline import after_ingest
from integration_signals.schedules.pipeline import summary as _summary
from integration_signals.scoring.evaluation import evaluate
from integration_signals.store.models import JobRun
from integration_signals.syncs import registry as sync_registry
from integration_signals.syncs.run import run_sync

ANCHOR_DAY = datetime(2000, 1, 1, tzinfo=UTC)
log = logging.getLogger("signals.schedules")


@dataclass
class JobContext:
    """What a running job gets: the tick it runs for, the clock, a stop flag it
    should check between units of work (then raise ``schedules.pull.Stopping``), and the
    scheduler's alert path for one item failing again and again (logged without one)."""

    job_id: str
    tick: datetime
    now: datetime
    stopping: threading.Event = field(default_factory=threading.Event)
    alert: Callable[[str], None] | None = None


JobFunc = Callable[[JobContext], dict[str, Any] | None]


@dataclass(frozen=True)
class JobSpec:
    id: str
    interval: timedelta
    func: JobFunc
    description: str
    # Run once at start-up for the current tick (a backlog goes out at once).
    at_start: bool = False


def anchor(config: Config) -> datetime:
    """Ticks are counted from here; every process computes the same ones."""
    hh, mm = (int(x) for x in config.schedules.daily_at.split(":"))
    return datetime.combine(ANCHOR_DAY.date(), time(hh, mm), tzinfo=UTC)


def tick_of(spec: JobSpec, config: Config, at: datetime) -> datetime:
    """The latest tick of ``spec`` at or before ``at`` (what a run at ``at`` is for)."""
    start = anchor(config)
    step = spec.interval.total_seconds()
    # Whole microseconds so every process computes exactly the same instant.
    n = int((at - start).total_seconds() // step)
    return start + timedelta(microseconds=round(n * step * 1_000_000))


def next_tick(spec: JobSpec, config: Config, at: datetime) -> datetime:
    current = tick_of(spec, config, at)
    step = timedelta(microseconds=round(spec.interval.total_seconds() * 1_000_000))
    return current + step


# ---------------------------------------------------------------- the jobs


def slack_configured(settings: Settings) -> bool:
    return bool(settings.slack_bot_token)


def build_jobs(engine: Engine, config: Config, settings: Settings) -> list[JobSpec]:
    """Every job this installation and configuration calls for."""
    sched = config.schedules
    jobs: list[JobSpec] = []

    def minutes(value: float) -> timedelta:
        return timedelta(minutes=value)

    from integration_signals.schedules import pull

    if pull.is_configured(config, settings):

        def pull_job(ctx: JobContext) -> dict[str, Any]:
            report = pull.pull_once(engine, config, settings, now=ctx.now, stopping=ctx.stopping)
            summary = report.as_json()
            summary["after_ingest"] = after_ingest(engine, config, report.ingest, now=ctx.now)
            return summary

        jobs.append(
            JobSpec("ingest.pull", minutes(sched.pull_minutes), pull_job, "SQL ingest pull")
        )

    def score_job(ctx: JobContext) -> dict[str, Any]:
        done = evaluate(engine, config, as_of=ctx.now)
        return {"scoring": _summary(done.scoring), "signals": _summary(done.signals)}

    jobs.append(JobSpec("score", minutes(sched.score_minutes), score_job, "score + signals"))

    for destination in (d.name for d in sync_registry.configured(settings)):

        def sync_job(ctx: JobContext, destination: str = destination) -> dict[str, Any] | None:
            with log_context(destination=destination):
                return _summary(
                    run_sync(
                        engine,
                        config,
                        settings,
                        destination,
                        now=ctx.now,
                        alert=ctx.alert,
                        hold_back=True,
                    )
                )

        jobs.append(
            JobSpec(
                f"sync.{destination}",
                minutes(sched.sync_minutes),
                sync_job,
                f"write scores into {destination}",
            )
        )

    if slack_configured(settings):
        for job_id, work, interval, at_start, what in (
            (
                "tasks.post",
                bot_tasks.post_pending_tasks,
                sched.task_post_minutes,
                True,
                "post new tasks",
            ),
            (
                "tasks.remind",
                bot_tasks.send_reminders,
                sched.reminders_minutes,
                False,
                "remind overdue",
            ),
            ("tasks.digest", bot_tasks.send_digest, sched.digest_minutes, False, "daily digest"),
        ):

            def slack_job(ctx: JobContext, work: Any = work) -> dict[str, Any] | None:
                return _summary(work(engine, config, settings, now=ctx.now, alert=ctx.alert))

            jobs.append(JobSpec(job_id, minutes(interval), slack_job, what, at_start=at_start))

    def prune_job(ctx: JobContext) -> dict[str, Any]:
        cutoff = ctx.now - timedelta(days=sched.keep_job_runs_days)
        t = JobRun.__table__
        with engine.begin() as conn:
            gone = conn.execute(delete(t).where(t.c.scheduled_at < cutoff)).rowcount
        return {"deleted": gone or 0, "before": cutoff.isoformat()}

    jobs.append(
        JobSpec(
            "maintenance.prune",
            minutes(sched.prune_minutes),
            prune_job,
            f"forget job runs older than {sched.keep_job_runs_days} days",
        )
    )
    return jobs
