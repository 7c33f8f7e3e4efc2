"""/metrics over real HTTP: behind the ingest token, in Prometheus' text format, and
moving with ingests, job runs, CRM syncs, Slack answers and the store's open work."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine

from integration_signals.config import Settings, load_config
from integration_signals.schedules.exceptions import JobFailed
from integration_signals.schedules.jobs import JobContext, JobSpec, build_jobs
from integration_signals.schedules.scheduler import Scheduler
from integration_signals.schedules.server import create_app
from integration_signals.store.models import Signal, Task
from tests.schedules.conftest import TOKEN

NOW = datetime.now(UTC).replace(microsecond=0)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics`` as (name, sorted labels) -> value."""
    response = httpx.get(f"{url}/metrics", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def fake_sync(ctx: JobContext) -> dict[str, Any]:
    """A CRM sync job's summary as ``run_sync`` reports it."""
    return {
        "destination": "salesforce",
        "status": "ok",
        "dry_run": False,
        "written": 7,
        "failed": 2,
        "unchanged": 40,
        "api_calls": 3,
    }


def broken(ctx: JobContext) -> dict[str, Any]:
    raise RuntimeError("the warehouse is down")


@pytest.fixture
def served(engine: Engine, live_app: Callable[[Any], str]) -> tuple[str, Scheduler]:
    config = load_config(None)
    settings = Settings(signals_ingest_token=SecretStr(TOKEN), signals_database_url="unused")
    jobs = [j for j in build_jobs(engine, config, settings) if j.id == "score"]
    jobs += [
        JobSpec("sync.salesforce", timedelta(days=1), fake_sync, "fake CRM sync"),
        JobSpec("ingest.broken", timedelta(days=1), broken, "always fails"),
    ]
    scheduler = Scheduler(engine, config, settings, jobs)
    return live_app(create_app(engine, config, settings, scheduler=scheduler)), scheduler


def test_metrics_refuse_requests_without_the_ingest_token(served: tuple[str, Scheduler]) -> None:
    url, _ = served
    assert httpx.get(f"{url}/metrics", timeout=10).status_code == 401
    wrong = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "unauthorized"


def test_counters_move_after_an_ingest_and_job_runs(
    served: tuple[str, Scheduler], engine: Engine
) -> None:
    url, scheduler = served
    before = scrape(url)
    assert value(before, "signals_store_up") == 1

    events = [
        {
            "event_id": f"m-{i}",
            "type": "sync.succeeded",
            "occurred_at": (NOW - timedelta(hours=i)).isoformat(),
            "account_id": "acme",
            "integration": "salesforce",
            "records": 10,
        }
        for i in range(3)
    ]
    events += [events[0], {"event_id": "bad", "type": "nope"}]
    answer = httpx.post(f"{url}/v1/events", content=json.dumps(events), headers=AUTH, timeout=30)
    assert answer.status_code == 200
    assert httpx.post(f"{url}/v1/events", content=b"[{", headers=AUTH, timeout=10).status_code == 400
    assert httpx.post(f"{url}/v1/events", content=b"[]", timeout=10).status_code == 401

    assert scheduler.run_now("score") == "ok"
    assert scheduler.run_now("sync.salesforce") == "ok"
    with pytest.raises(JobFailed):
        scheduler.run_now("ingest.broken")

    with engine.begin() as conn:
        signal_id = conn.execute(
            Signal.__table__.insert().values(
                account_id="acme", kind="health_degradation", subject="acme-sf", fired_at=NOW
            )
        ).inserted_primary_key[0]
        conn.execute(
            Task.__table__.insert(),
            [
                {
                    "signal_id": signal_id,
                    "account_id": "acme",
                    "signal_kind": "health_degradation",
                    "title": "Check Salesforce",
                    "status": status,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for status in ("open", "claimed", "done")
            ],
        )

    after = scrape(url)
    for outcome, count in (("accepted", 3), ("duplicate", 1), ("quarantined", 1)):
        assert value(after, "signals_events_total", source="http", outcome=outcome) == count
    assert value(after, "signals_ingest_requests_total", endpoint="/v1/events", code="200") == 1
    assert value(after, "signals_ingest_requests_total", endpoint="/v1/events", code="400") == 1
    assert value(after, "signals_ingest_requests_total", endpoint="/v1/events", code="401") == 1

    assert value(after, "signals_job_runs_total", job="score", status="ok") == 1
    assert value(after, "signals_job_runs_total", job="ingest.broken", status="failed") == 1
    assert value(after, "signals_job_duration_seconds_count", job="score", status="ok") == 1
    assert value(after, "signals_job_last_success_timestamp_seconds", job="score") > 0

    assert value(after, "signals_crm_sync_runs_total", destination="salesforce", status="ok") == 1
    for outcome, count in (("written", 7), ("failed", 2), ("unchanged", 40)):
        assert (
            value(after, "signals_crm_records_total", destination="salesforce", outcome=outcome)
            == count
        )
    assert value(after, "signals_crm_api_calls_total", destination="salesforce", outcome="ok") == 3

    assert value(after, "signals_open_signals", kind="health_degradation") == 1
    assert value(after, "signals_open_tasks", kind="health_degradation", status="open") == 1
    assert value(after, "signals_open_tasks", kind="health_degradation", status="claimed") == 1
    assert value(after, "signals_open_tasks", kind="health_degradation", status="done") == 0


def test_slack_answers_are_counted_and_timed(served: tuple[str, Scheduler]) -> None:
    url, _ = served
    # Slack is not configured here: the endpoint answers 503, and that answer is counted.
    assert httpx.post(f"{url}/slack/events", content=b"x=1", timeout=10).status_code == 503
    samples = scrape(url)
    assert value(samples, "signals_slack_answers_total", code="503") == 1
    assert value(samples, "signals_slack_answer_duration_seconds_count") == 1
