"""The scheduler in one process: a failing job is recorded, retried every tick, turned
into one Slack alert after repeated failures, and shown stale in /healthz."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, select

from integration_signals.config import Settings, load_config
from integration_signals.schedules.alerts import slack_alert
from integration_signals.schedules.jobs import build_jobs
from integration_signals.schedules.locks import FAILED
from integration_signals.schedules.scheduler import Scheduler
from integration_signals.schedules.server import create_app
from integration_signals.store.models import JobRun
from tests.fakes.slack import FakeSlack
from tests.schedules.conftest import Source, healthz, posted, wait_for


def test_a_failing_job_is_retried_each_tick_alerted_once_and_reported_stale(
    engine: Engine,
    source: Source,
    fake_slack: FakeSlack,
    live_app: Callable[[Any], str],
    tmp_path: Path,
) -> None:
    path = tmp_path / "signals.toml"
    path.write_text(
        "[schedules]\npull_minutes = 0.01\nalert_after_failures = 3\nstale_after_intervals = 3\n"
        '[schedules.pull]\nquery = "SELECT * FROM no_such_table"\n'
    )
    config = load_config(path)
    settings = Settings(
        signals_database_url="unused",
        signals_pull_url=SecretStr(source.url),
        slack_bot_token=SecretStr("xoxb-test-token"),
        slack_tasks_channel="C-OPS",
        slack_api_url=fake_slack.api_url,
    )
    jobs = [job for job in build_jobs(engine, config, settings) if job.id == "ingest.pull"]
    scheduler = Scheduler(engine, config, settings, jobs, alert=slack_alert(settings))
    url = live_app(create_app(engine, config, settings, scheduler=scheduler))

    health = wait_for(
        lambda: (h := healthz(url))["jobs"]["ingest.pull"]["stale"] and h,
        timeout=20,
        what="the failing job to be reported stale",
    )
    assert health["status"] == "degraded"
    assert health["stale"] == ["ingest.pull"]
    job = health["jobs"]["ingest.pull"]
    assert "no_such_table" in job["last_error"]
    assert job["last_success_at"] is None
    assert job["next_run_at"] is not None

    alerts = wait_for(lambda: posted(fake_slack), timeout=10, what="the Slack alert")
    t = JobRun.__table__
    with engine.connect() as conn:
        runs = conn.execute(select(t.c.status, t.c.error).where(t.c.job_id == "ingest.pull")).all()
    finished = [r for r in runs if r.status != "running"]  # a tick may be under way
    assert len(finished) >= 3
    assert {r.status for r in finished} == {FAILED}
    assert len(alerts) == 1, "repeated failures give one alert, not one per failure"
    assert alerts[0]["channel"] == "C-OPS"
    assert "ingest.pull" in alerts[0]["text"] and "3 times in a row" in alerts[0]["text"]
    assert "xoxb-test-token" not in str(runs) + str(health)
