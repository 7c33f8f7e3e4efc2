"""Secrets stay out of every record, whatever Slack answers: a Slack (or a proxy in
front of it) that echoes the request's Authorization header, the bot token in it, in
every error it answers, with every secret variable set, leaves no secret value in
stdout, stderr, logs or the database — from task posting, reminders, the digest, a
task's message refreshed after a web click or a Slack button click, and an operational
alert."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine

from integration_signals.bot.http import slack_router
from integration_signals.bot.tasks import post_pending_tasks, refresh_task_message
from integration_signals.config import Settings, load_config
from integration_signals.schedules.alerts import slack_alert
from tests.bot.conftest import NOW, SlackSender, add_task, serve, task_row
from tests.fakes.slack import Answer, FakeSlack, Received
from tests.leaks import assert_clean, assert_results_clean, db_text, secret_env

BROKEN = "broken@example.com"
IN_PROCESS_TOKEN = "xoxb-in-process-secret-77"


def _refuse(error: str) -> Any:
    def script(r: Received) -> Answer:
        return 200, {"ok": False, "error": error}, {}

    return script


def test_an_echoing_slack_leaks_no_secret_anywhere(
    cli: Any, engine: Engine, slack: FakeSlack, accounts: Any, caplog: pytest.LogCaptureFixture
) -> None:
    slack.echo_token = True
    secrets, values = secret_env()
    env = {**secrets, "SLACK_API_URL": slack.api_url, "SLACK_TASKS_CHANNEL": "C0TASKS"}
    caplog.set_level(logging.DEBUG)
    odd_owner = add_task(engine, title="owner lookup breaks", owner=BROKEN)
    task_id = add_task(engine, title="posting breaks")
    slack.scripts["users.lookupByEmail"] = lambda r: (
        (200, {"ok": False, "error": "fatal_error"}, {}) if r.body.get("email") == BROKEN else None
    )
    slack.scripts["chat.postMessage"] = _refuse("not_in_channel")
    at = NOW.isoformat()
    refused = cli("bot", "post-tasks", "--as-of", at, "--json", env=env)
    assert '"failed": 2' in refused.stdout
    assert "authorization" in refused.stdout and "***" in refused.stdout  # it did echo

    del slack.scripts["chat.postMessage"]
    later = (NOW + timedelta(hours=2)).isoformat()
    posted = cli("bot", "post-tasks", "--as-of", later, "--json", env=env)
    assert '"sent": 1' in posted.stdout and task_row(engine, task_id)["slack_ts"]
    assert task_row(engine, odd_owner)["slack_ts"] is None

    slack.scripts["chat.postMessage"] = _refuse("channel_not_found")
    late = (NOW + timedelta(days=1)).isoformat()
    reminded = cli("bot", "remind", "--as-of", late, "--json", env=env)
    digest = cli("bot", "digest", "--as-of", late, "--json", env=env)
    assert '"failed": 1' in reminded.stdout and '"failed": 1' in digest.stdout

    # In-process, as serve, the bot and the web dashboard run it, with a token the
    # CLI's log redaction (installed for this process above) does not know.
    settings = Settings(
        **{k.lower(): v for k, v in secrets.items()},
        slack_api_url=slack.api_url,
        slack_tasks_channel="C0TASKS",
    )
    settings.slack_bot_token = SecretStr(IN_PROCESS_TOKEN)
    values.append(IN_PROCESS_TOKEN)
    config = load_config(None)
    post_pending_tasks(engine, config, settings, now=NOW + timedelta(days=2))
    slack.scripts["chat.update"] = _refuse("cant_update_message")
    assert refresh_task_message(engine, settings, task_id, now=NOW) is False
    alert = slack_alert(settings)
    assert alert is not None
    with pytest.raises(SlackApiError) as raised:
        alert("the score job failed 3 times in a row")
    # A Claim button clicked in Slack: its message cannot be updated.
    app = FastAPI()
    app.include_router(slack_router(engine, config, settings))
    server, url = serve(app)
    try:
        sender = SlackSender(url, slack, secret=secrets["SLACK_SIGNING_SECRET"])
        slack.clear()
        message_ts = task_row(engine, task_id)["slack_ts"]
        clicked = sender.click("task_claim", str(task_id), message_ts=message_ts)
        assert clicked.status_code == 200
        slack.wait_for(lambda r: r.api == "chat.update")
        time.sleep(0.3)  # the listener logs after Slack answered
    finally:
        server.should_exit = True

    assert_results_clean(
        {"refused": refused, "posted": posted, "reminded": reminded, "digest": digest}, values
    )
    assert_clean("logs", "\n".join(r.getMessage() for r in caplog.records), values)
    assert_clean("the database", db_text(engine), values)
    assert_clean("the alert's error", str(raised.value), values)
