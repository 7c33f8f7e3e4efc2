"""POST /slack/events: only requests signed with the signing secret, within 5 minutes,
run anything; everything else is 401 and leaves Slack and the store untouched."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from integration_signals.config import Config, Settings
from tests.bot.conftest import SlackSender, add_task, serve, task_row
from tests.fakes.slack import FakeSlack


def test_a_signed_help_command_is_answered_in_the_ack(bot: SlackSender):
    response = bot.command("help")
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert "/integration-health at-risk" in body["blocks"][1]["text"]["text"]


@pytest.mark.parametrize(
    ("how", "kwargs"),
    [
        ("forged signature", {"signature": "v0=" + "0" * 64}),
        ("signed with another secret", {"secret": "not-the-secret"}),
        ("missing signature", {"sign": False}),
        ("replayed capture 6 minutes old", {"age": 360}),
        ("timestamp 6 minutes ahead", {"age": -360}),
    ],
)
def test_unverified_requests_get_401_and_run_nothing(
    engine: Engine, bot: SlackSender, slack: FakeSlack, accounts, how: str, kwargs: dict
):
    task_id = add_task(engine)
    before = task_row(engine, task_id)
    bodies = [bot.command_body("acme"), bot.action_body("task_claim", str(task_id))]
    for body in bodies:
        if "secret" in kwargs:
            sender = SlackSender(bot.url, slack, secret=kwargs["secret"])
            response = sender.post(body)
        else:
            age = kwargs.get("age", 0)
            response = bot.post(
                body,
                timestamp=int(time.time()) - age,
                signature=kwargs.get("signature"),
                sign=kwargs.get("sign", True),
            )
        assert response.status_code == 401, how
        assert response.json() == {"error": "invalid request"}
    time.sleep(0.3)  # anything that wrongly ran in the background would have called Slack
    assert slack.calls() == []
    assert task_row(engine, task_id) == before


def test_a_tampered_body_with_a_valid_signature_of_another_body_is_refused(
    engine: Engine, bot: SlackSender, slack: FakeSlack, accounts
):
    task_id = add_task(engine)
    good = bot.action_body("task_claim", str(task_id), user="W0ALEX")
    import hashlib
    import hmac

    ts = str(int(time.time()))
    signature = (
        "v0="
        + hmac.new(bot.secret.encode(), f"v0:{ts}:{good}".encode(), hashlib.sha256).hexdigest()
    )
    evil = good.replace("W0ALEX", "W0EVIL")
    response = bot.post(evil, timestamp=int(ts), signature=signature)
    assert response.status_code == 401
    assert task_row(engine, task_id)["status"] == "open"
    assert slack.calls() == []


def test_without_slack_credentials_the_endpoint_says_what_to_set(engine: Engine, config: Config):
    from integration_signals.bot.http import slack_router

    app = FastAPI()
    app.include_router(slack_router(engine, config, Settings()))
    server, url = serve(app)
    try:
        import requests

        response = requests.post(url + "/slack/events", data=b"x", timeout=5)
    finally:
        server.should_exit = True
    assert response.status_code == 503
    assert "SLACK_BOT_TOKEN" in response.json()["error"]
    assert "SLACK_SIGNING_SECRET" in response.json()["error"]
