"""One bad item never stops a Slack job: a task whose owner lookup answers oddly, a
reminder or a digest that Slack refuses, fails alone — recorded with its reason, held
back with a growing backoff, counted in the run's report, alerted once after N failures
in a row — while every other item goes out."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine, select

from integration_signals.bot.client import slack_client
from integration_signals.bot.tasks import post_pending_tasks, send_digest, send_reminders
from integration_signals.config import Config, Settings, load_config
from integration_signals.store import failures
from integration_signals.store.models import KeyValue
from tests.bot.conftest import NOW, add_task, task_row
from tests.fakes.slack import Answer, FakeSlack, Received

BAD_OWNER = "broken@example.com"


def _config(**schedules: Any) -> Config:
    base = load_config(None)
    return base.model_copy(update={"schedules": base.schedules.model_copy(update=schedules)})


def _client(settings: Settings) -> WebClient:
    client = slack_client(settings)
    client.timeout = 0.5
    return client


def _failures(engine: Engine, job: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {str(row["item"]): row for row in failures.failing(conn, job)}


def _for(email: str, answer: Answer | None) -> Any:
    def script(r: Received) -> Answer | None:
        if r.body.get("email") != email:
            return None
        if answer is None:  # a timeout: answer later than the client waits
            time.sleep(1.2)
            return 200, {"ok": False, "error": "too_late"}, {}
        return answer

    return script


ODD_LOOKUPS = {
    "ok-without-user": (
        (200, {"ok": True}, {}),
        "users.lookupByEmail: unexpected answer (no user)",
    ),
    "user-without-id": (
        (200, {"ok": True, "user": {"name": "x"}}, {}),
        "users.lookupByEmail: unexpected answer (no user.id)",
    ),
    "http-500": ((500, "upstream broke", {}), "users.lookupByEmail failed: HTTP 500"),
    "timeout": (None, "users.lookupByEmail did not answer"),
}


@pytest.mark.parametrize("shape", list(ODD_LOOKUPS), ids=list(ODD_LOOKUPS))
def test_an_odd_owner_lookup_fails_its_task_alone_retried_with_backoff_and_alerted_once(
    engine: Engine, settings: Settings, slack: FakeSlack, accounts, shape: str
):
    answer, reason = ODD_LOOKUPS[shape]
    config = _config(item_alert_after=3, item_retry_minutes=1, item_retry_max_minutes=60)
    bad = add_task(engine, title="owner lookup breaks", owner=BAD_OWNER)
    good = add_task(engine, title="owner by e-mail")  # dana@example.com
    slack_owned = add_task(engine, title="owner by Slack id", owner="U0SALES")
    slack.scripts["users.lookupByEmail"] = _for(BAD_OWNER, answer)
    alerts: list[str] = []
    client = _client(settings)

    def run(at: datetime) -> Any:
        return post_pending_tasks(
            engine, config, settings, now=at, client=client, alert=alerts.append
        )

    first = run(NOW)
    assert (first.sent, first.failed, first.held_back, first.alerted) == (2, 1, 0, 0)
    assert reason in first.errors[0] and f"task {bad}" in first.errors[0]
    assert task_row(engine, good)["slack_ts"] and task_row(engine, slack_owned)["slack_ts"]
    assert task_row(engine, bad)["posted_at"] is None and task_row(engine, bad)["slack_ts"] is None
    row = _failures(engine, "tasks.post")[str(bad)]
    assert row["failures"] == 1 and reason in row["last_error"]
    assert row["next_attempt_at"] == NOW + timedelta(minutes=1)

    # Within its backoff the task is held back: no lookup, no post, counted.
    lookups = len(slack.calls("users.lookupByEmail"))
    waiting = run(NOW + timedelta(seconds=30))
    assert (waiting.sent, waiting.failed, waiting.held_back) == (0, 0, 1)
    assert len(slack.calls("users.lookupByEmail")) == lookups

    # Retried on later ticks after a doubling backoff; the third failure alerts, once.
    second = run(NOW + timedelta(minutes=1))
    assert second.failed == 1 and _failures(engine, "tasks.post")[str(bad)]["failures"] == 2
    assert run(NOW + timedelta(minutes=2)).held_back == 1  # 2 minutes after the 2nd failure
    third = run(NOW + timedelta(minutes=3))
    assert (third.failed, third.alerted) == (1, 1)
    assert len(alerts) == 1 and f"task {bad}" in alerts[0] and "3 times" in alerts[0]
    assert reason in alerts[0]
    fourth = run(NOW + timedelta(minutes=7))
    assert (fourth.failed, fourth.alerted) == (1, 0) and len(alerts) == 1
    assert _failures(engine, "tasks.post")[str(bad)]["failures"] == 4
    assert first.as_json()["failed"] == 1 and "held_back" in waiting.as_json()

    # Slack answers normally again: the task goes out and its failures are forgotten.
    slack.scripts.clear()
    slack.users[BAD_OWNER] = "U0BROKEN"
    healed = run(NOW + timedelta(minutes=15))
    assert (healed.sent, healed.failed) == (1, 0)
    assert task_row(engine, bad)["slack_ts"] and _failures(engine, "tasks.post") == {}
    posts = [p for p in slack.calls("chat.postMessage") if "owner lookup breaks" in p.body["text"]]
    assert len(posts) == 1 and "<@U0BROKEN>" in str(posts[0].body["blocks"])


def test_an_owner_not_in_slack_is_no_failure_the_task_goes_out_without_a_mention(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, accounts
):
    task_id = add_task(engine, owner="stranger@example.com")  # users_not_found
    report = post_pending_tasks(engine, config, settings, now=NOW)
    assert (report.sent, report.failed) == (1, 0)
    assert task_row(engine, task_id)["slack_ts"] and _failures(engine, "tasks.post") == {}


def test_an_odd_post_answer_fails_only_that_task(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, accounts
):
    odd = add_task(engine, title="answered oddly")
    fine = add_task(engine, title="answered fine")
    slack.scripts["chat.postMessage"] = lambda r: (
        (200, {"ok": True, "channel": "C0TASKS"}, {})
        if "answered oddly" in r.body["text"]
        else None
    )
    report = post_pending_tasks(engine, config, settings, now=NOW)
    assert (report.sent, report.failed) == (1, 1)
    assert "chat.postMessage: unexpected answer (no ts)" in report.errors[0]
    assert task_row(engine, fine)["slack_ts"] and task_row(engine, odd)["slack_ts"] is None
    assert "no ts" in _failures(engine, "tasks.post")[str(odd)]["last_error"]


def test_a_failing_reminder_fails_alone_and_is_retried_after_its_backoff(
    engine: Engine, settings: Settings, slack: FakeSlack, accounts
):
    config = _config(item_alert_after=2)
    late = NOW - timedelta(hours=1)
    bad = add_task(engine, title="bad", due_at=late, slack_channel="C0TASKS", slack_ts="1.000001")
    good = add_task(engine, title="good", due_at=late, slack_channel="C0TASKS", slack_ts="1.000002")
    slack.scripts["chat.postMessage"] = lambda r: (
        (500, "gateway timeout", {}) if r.body.get("thread_ts") == "1.000001" else None
    )
    alerts: list[str] = []

    def run(at: datetime) -> Any:
        return send_reminders(engine, config, settings, now=at, alert=alerts.append)

    first = run(NOW)
    assert (first.sent, first.failed) == (1, 1)
    assert "chat.postMessage failed: HTTP 500" in first.errors[0]
    assert task_row(engine, good)["reminded_at"] == NOW
    assert task_row(engine, bad)["reminded_at"] is None
    assert run(NOW + timedelta(seconds=20)).held_back == 1
    second = run(NOW + timedelta(minutes=1))
    assert (second.failed, second.alerted) == (1, 1) and "reminder of task" in alerts[0]
    slack.scripts.clear()
    third = run(NOW + timedelta(minutes=3))
    assert third.sent == 1 and task_row(engine, bad)["reminded_at"] is not None
    assert _failures(engine, "tasks.remind") == {}
    reminders = [p for p in slack.calls("chat.postMessage") if p.body.get("thread_ts")]
    assert sorted(p.body["thread_ts"] for p in reminders).count("1.000002") == 1


def test_a_failing_digest_is_recorded_for_its_day_and_sent_after_its_backoff(
    engine: Engine, settings: Settings, slack: FakeSlack, accounts
):
    config = _config(item_alert_after=2, item_retry_minutes=5)
    slack.scripts["chat.postMessage"] = lambda r: (200, {"ok": True}, {})  # no channel, no ts
    alerts: list[str] = []

    def run(at: datetime) -> Any:
        return send_digest(engine, config, settings, now=at, alert=alerts.append)

    first = run(NOW)
    assert (first.sent, first.failed) == (0, 1)
    day = NOW.date().isoformat()
    assert "unexpected answer" in _failures(engine, "tasks.digest")[day]["last_error"]
    with engine.connect() as conn:  # the day is free again for a retry
        assert (
            conn.execute(select(KeyValue.key).where(KeyValue.key == f"bot.digest.{day}")).first()
            is None
        )
    assert run(NOW + timedelta(minutes=1)).held_back == 1
    assert (run(NOW + timedelta(minutes=5)).alerted, len(alerts)) == (1, 1)
    assert "digest of" in alerts[0]
    slack.scripts.clear()
    assert run(NOW + timedelta(minutes=16)).sent == 1
    assert _failures(engine, "tasks.digest") == {}
    assert run(NOW + timedelta(minutes=40)).skipped == 1  # once a day still holds


def test_the_scheduler_carries_an_items_alert_through_its_own_alert_path(
    engine: Engine, settings: Settings, slack: FakeSlack, accounts
):
    from integration_signals.schedules.jobs import build_jobs
    from integration_signals.schedules.scheduler import Scheduler

    config = _config(item_alert_after=1)
    add_task(engine, owner=BAD_OWNER)
    add_task(engine, title="fine")
    slack.scripts["users.lookupByEmail"] = _for(BAD_OWNER, (200, {"ok": True}, {}))
    specs = [s for s in build_jobs(engine, config, settings) if s.id == "tasks.post"]
    alerts: list[str] = []
    scheduler = Scheduler(engine, config, settings, specs, alert=alerts.append)
    assert scheduler.run_now("tasks.post") == "ok"  # the job itself succeeded
    assert len(alerts) == 1 and "`tasks.post`" in alerts[0] and "no user" in alerts[0]
    assert len([p for p in slack.calls("chat.postMessage") if p.body.get("blocks")]) == 1
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() not in alerts[0]
