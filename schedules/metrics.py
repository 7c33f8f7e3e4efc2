"""Prometheus metrics of one `signals serve` process, served at ``GET /metrics``.

Recorded here, in the layer that composes the others, so store, scoring, syncs and bot
never depend on prometheus: the scheduler hands every finished job run to
``Metrics.job_finished`` (its summary carries the sync's, the pull's and the Slack
jobs' counts), the ingest routes their answers to ``ingest_answered``, and an ASGI
middleware times ``POST /slack/events``. What the database knows (open signals and
tasks by kind, each job's last success across every process) is read at scrape time
by ``StoreCollector``, so it is right whichever process ran the job.

Each app has its own ``CollectorRegistry`` (never the global default), so tests can
build many apps in one process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from integration_signals.schedules.locks import OK, RUNNING
from integration_signals.store.models import JobRun, Signal, Task
from integration_signals.store.sql import as_utc

log = logging.getLogger("signals.metrics")

SLACK_PATH = "/slack/events"
# Jobs take from milliseconds (an empty score tick) to many minutes (a full CRM sync).
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# Slack wants an answer within 3 seconds.
SLACK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10)


class Metrics:
    """The counters and histograms of one app, and its registry."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.job_runs = Counter(
            "signals_job_runs",
            "Scheduled job runs by job and status.",
            ["job", "status"],
            registry=r,
        )
        self.job_seconds = Histogram(
            "signals_job_duration_seconds",
            "How long job runs took, by job and status.",
            ["job", "status"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.events = Counter(
            "signals_events",
            "Ingested event records by source (http, segment, pull) and outcome"
            " (accepted, duplicate, quarantined).",
            ["source", "outcome"],
            registry=r,
        )
        self.ingest_requests = Counter(
            "signals_ingest_requests",
            "Ingest API requests by endpoint and HTTP status.",
            ["endpoint", "code"],
            registry=r,
        )
        self.crm_runs = Counter(
            "signals_crm_sync_runs",
            "CRM sync runs by destination and status.",
            ["destination", "status"],
            registry=r,
        )
        self.crm_records = Counter(
            "signals_crm_records",
            "CRM records by destination and outcome (written, failed, unchanged).",
            ["destination", "outcome"],
            registry=r,
        )
        self.crm_api_calls = Counter(
            "signals_crm_api_calls",
            "CRM API calls by destination and the outcome of their run (ok, failed, stopped).",
            ["destination", "outcome"],
            registry=r,
        )
        self.slack_messages = Counter(
            "signals_slack_messages",
            "Slack messages the task jobs sent, by job and outcome (sent, failed, skipped).",
            ["job", "outcome"],
            registry=r,
        )
        self.slack_answers = Counter(
            "signals_slack_answers",
            "Answers to Slack's requests on POST /slack/events, by HTTP status.",
            ["code"],
            registry=r,
        )
        self.slack_seconds = Histogram(
            "signals_slack_answer_duration_seconds",
            "Time to answer Slack's requests on POST /slack/events.",
            buckets=SLACK_BUCKETS,
            registry=r,
        )
        r.register(StoreCollector(engine))

    # ------------------------------------------------------------ recording

    def job_finished(self, job_id: str, status: str, seconds: float, result: Any) -> None:
        """A scheduler run ended (``ok``, ``failed`` or ``stopped``) with ``result``, the
        job's summary; the counts of syncs, the pull and Slack jobs come from it."""
        self.job_runs.labels(job_id, status).inc()
        self.job_seconds.labels(job_id, status).observe(seconds)
        if not isinstance(result, dict):
            return
        if job_id.startswith("sync."):
            self.sync_finished(result)
        elif job_id == "ingest.pull":
            self.events_counted("pull", result)
        elif job_id.startswith("tasks."):
            for outcome in ("sent", "failed", "skipped"):
                count = result.get(outcome)
                if isinstance(count, int) and count:
                    self.slack_messages.labels(job_id, outcome).inc(count)

    def sync_finished(self, report: dict[str, Any]) -> None:
        """One CRM sync's report (``SyncReport.as_json()`` or its summary); dry runs
        write nothing and are not counted."""
        destination = str(report.get("destination") or "unknown")
        if report.get("dry_run"):
            return
        status = str(report.get("status") or "unknown")
        self.crm_runs.labels(destination, status).inc()
        for outcome in ("written", "failed", "unchanged"):
            count = report.get(outcome)
            if isinstance(count, int) and count:
                self.crm_records.labels(destination, outcome).inc(count)
        calls = report.get("api_calls")
        if isinstance(calls, int) and calls:
            self.crm_api_calls.labels(destination, status).inc(calls)

    def events_counted(self, source: str, answer: dict[str, Any]) -> None:
        for outcome, key in (
            ("accepted", "accepted"),
            ("duplicate", "duplicates"),
            ("quarantined", "quarantined"),
        ):
            count = answer.get(key)
            if isinstance(count, int) and count:
                self.events.labels(source, outcome).inc(count)

    def ingest_answered(self, endpoint: str, code: int, answer: dict[str, Any] | None) -> None:
        """An ingest request's answer: its status, and its counts when it was stored."""
        self.ingest_requests.labels(endpoint, str(code)).inc()
        if answer is not None:
            source = "segment" if endpoint == "/v1/batch" else "http"
            self.events_counted(source, answer)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format (runs the database collector)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class StoreCollector(Collector):
    """Gauges read from the database at scrape time: open signals by kind, open tasks by
    kind and status, each job's last success and runs in progress (every process's)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Any]:
        # Nothing to describe up front: describing would query the database at
        # registration.
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "signals_store_up", "1 when the database answered this scrape's queries."
        )
        started = time.monotonic()
        try:
            families = self._read()
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics: the database did not answer: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        yield from families
        up.add_metric([], 1)
        yield up
        took = GaugeMetricFamily(
            "signals_store_scrape_seconds", "How long this scrape's database queries took."
        )
        took.add_metric([], time.monotonic() - started)
        yield took

    def _read(self) -> list[GaugeMetricFamily]:
        s, t, j = Signal.__table__, Task.__table__, JobRun.__table__
        signals = GaugeMetricFamily(
            "signals_open_signals", "Open signals by kind.", labels=["kind"]
        )
        tasks = GaugeMetricFamily(
            "signals_open_tasks",
            "Playbook tasks not done, by signal kind and status (open, claimed, snoozed).",
            labels=["kind", "status"],
        )
        last_ok = GaugeMetricFamily(
            "signals_job_last_success_timestamp_seconds",
            "When each job last succeeded (any process), as a Unix time.",
            labels=["job"],
        )
        running = GaugeMetricFamily(
            "signals_job_running", "Job runs in progress (any process).", labels=["job"]
        )
        with self.engine.connect() as conn:
            for kind, count in conn.execute(
                select(s.c.kind, func.count()).where(s.c.status == "open").group_by(s.c.kind)
            ):
                signals.add_metric([kind], count)
            for kind, status, count in conn.execute(
                select(t.c.signal_kind, t.c.status, func.count())
                .where(t.c.status != "done")
                .group_by(t.c.signal_kind, t.c.status)
            ):
                tasks.add_metric([kind, status], count)
            for job_id, finished in conn.execute(
                select(j.c.job_id, func.max(j.c.finished_at))
                .where(j.c.status == OK)
                .group_by(j.c.job_id)
            ):
                if finished is not None:
                    last_ok.add_metric([job_id], as_utc(finished).timestamp())
            for job_id, count in conn.execute(
                select(j.c.job_id, func.count()).where(j.c.status == RUNNING).group_by(j.c.job_id)
            ):
                running.add_metric([job_id], count)
        return [signals, tasks, last_ok, running]


class SlackTiming:
    """ASGI middleware: counts and times the answers to ``POST /slack/events``, from the
    request's arrival to the end of the answer's body."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != SLACK_PATH:
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = {"code": 500}

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.metrics.slack_answers.labels(str(status["code"])).inc()
            self.metrics.slack_seconds.observe(time.monotonic() - started)
