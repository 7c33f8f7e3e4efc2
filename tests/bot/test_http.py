"""POST /slack/events: only requests signed with the signing secret, within 5 minutes,
run anything; everything else is 401 and leaves Slack and the store untouched."""

from __future__ import annotations

import logging
import time

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from integration_signals.bot.http import RateLimitedLog
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


# ---------------------------------------------------------------- junk costs nothing

JUNK = "payload={bad"


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "/slack/events refused" in r.getMessage()]


@pytest.mark.parametrize(
    ("how", "kwargs", "reason"),
    [
        ("unsigned", {"sign": False}, "missing signature"),
        ("forged", {"signature": "v0=" + "0" * 64}, "bad signature"),
        ("stale", {"timestamp": 1_000_000_000}, "stale timestamp"),
    ],
)
def test_an_unsigned_malformed_body_is_a_401_with_one_log_line_and_runs_nothing(
    engine: Engine,
    bot: SlackSender,
    slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    how: str,
    kwargs: dict,
    reason: str,
):
    caplog.set_level(logging.DEBUG)
    response = bot.post(JUNK, **kwargs)
    assert response.status_code == 401, how
    assert response.json() == {"error": "invalid request"}
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and reason in lines[0], lines
    assert not any(r.exc_info for r in caplog.records)  # no traceback
    assert slack.calls() == []


def test_a_non_numeric_timestamp_is_a_401_not_a_crash(bot: SlackSender):
    import requests

    response = requests.post(
        bot.url + "/slack/events",
        data=JUNK.encode(),
        headers={"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
        timeout=10,
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [JUNK, "payload=1", "payload=%5B%5D", "payload=null"],
    ids=["broken-json", "a-number", "a-list", "null"],
)
def test_a_signed_but_malformed_body_is_a_400_with_one_log_line(
    engine: Engine,
    bot: SlackSender,
    slack: FakeSlack,
    accounts,
    caplog: pytest.LogCaptureFixture,
    body: str,
):
    task_id = add_task(engine)
    before = task_row(engine, task_id)
    caplog.set_level(logging.DEBUG)
    response = bot.post(body)
    assert response.status_code == 400
    assert response.json() == {"error": "malformed request"}
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "malformed body" in lines[0], lines
    assert not any(r.exc_info for r in caplog.records)
    assert slack.calls() == [] and task_row(engine, task_id) == before


def test_fifty_bad_requests_write_a_few_log_lines_that_count_the_rest(
    bot: SlackSender, slack: FakeSlack, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="signals.bot")
    for _ in range(50):
        assert bot.post(JUNK, sign=False).status_code == 401
    for _ in range(50):
        assert bot.post(JUNK).status_code == 400
    lines = _refusals(caplog)
    assert 2 <= len(lines) <= 4, [r.getMessage() for r in lines]
    assert slack.calls() == []


def test_the_rate_limited_log_counts_what_it_left_out():
    logger = logging.getLogger("tests.ratelimited")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    clock = [0.0]
    limited = RateLimitedLog(logger, every=10, clock=lambda: clock[0])
    try:
        for i in range(30):
            clock[0] = i * 0.5  # 15 s of refusals, two a second
            limited.warning("missing signature", "x")
        limited.warning("bad signature", "y")
    finally:
        logger.removeHandler(handler)
    assert len(seen) == 3
    assert "+19 more in the last 10s" in seen[1]
    assert "bad signature" in seen[2]


def test_serve_answers_junk_on_slack_events_with_401_and_never_says_ingest(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack
):
    import requests

    from integration_signals.schedules.server import create_app

    server, url = serve(create_app(engine, config, settings))
    try:
        unsigned = requests.post(
            url + "/slack/events",
            data=JUNK.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        signed = SlackSender(url, slack).post(JUNK)
    finally:
        server.should_exit = True
    assert unsigned.status_code == 401 and signed.status_code == 400
    for response in (unsigned, signed):
        assert "ingest" not in response.text
    assert slack.calls() == []
