"""Fixtures for the bot: a fake Slack Web API, the bot's router served by uvicorn on an
ephemeral port, and a sender that signs requests like Slack does (API-NOTES C2)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, select

from integration_signals.config import Config, Settings, load_config
from integration_signals.store.accounts import import_account_objects
from integration_signals.store.models import Task
from tests.fakes.slack import FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-test-token"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(users={"dana@example.com": "U0DANA"}).start()
    yield fake
    fake.stop()
    assert fake.rejected == [], f"Slack refused a message: {fake.rejected}"


@pytest.fixture
def settings(slack: FakeSlack) -> Settings:
    return Settings(
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
        slack_tasks_channel="C0TASKS",
    )


@pytest.fixture
def config() -> Config:
    return load_config(None)


def serve(app: FastAPI) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@dataclass
class SlackSender:
    """Sends what Slack would send to /slack/events, signed with the app's secret."""

    url: str
    fake: FakeSlack
    secret: str = SECRET

    def post(
        self,
        body: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        sign: bool = True,
    ) -> requests.Response:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if sign:
            base = f"v0:{ts}:{body}".encode()
            digest = hmac.new(self.secret.encode(), base, hashlib.sha256).hexdigest()
            headers["X-Slack-Request-Timestamp"] = ts
            headers["X-Slack-Signature"] = signature or f"v0={digest}"
        return requests.post(
            self.url + "/slack/events", data=body.encode(), headers=headers, timeout=10
        )

    def command_body(
        self,
        text: str,
        *,
        channel: str = "C0CSM",
        user: str = "W0ALEX",
        response_url: str | None = None,
    ) -> str:
        return urlencode(
            {
                "token": "verification_token",
                "team_id": "T111",
                "team_domain": "test-domain",
                "channel_id": channel,
                "channel_name": "csm",
                "user_id": user,
                "user_name": "alex",
                "command": "/integration-health",
                "text": text,
                "response_url": response_url or self.fake.response_url(),
                "trigger_id": "111.111.xxx",
                "api_app_id": "A111",
            }
        )

    def command(self, text: str, **kw: Any) -> requests.Response:
        return self.post(self.command_body(text, **kw))

    def action_body(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "W0ALEX",
        channel: str = "C0TASKS",
        message_ts: str = "1700000000.000001",
    ) -> str:
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T111"},
            "api_app_id": "A111",
            "token": "verification_token",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "trigger_id": "111.222.valid",
            "team": {"id": "T111", "domain": "workspace-domain"},
            "channel": {"id": channel, "name": "tasks"},
            "response_url": self.fake.response_url(),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b",
                    "text": {"type": "plain_text", "text": "Button", "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": "1596530385.194939",
                }
            ],
        }
        return "payload=" + quote(json.dumps(payload))

    def click(self, action_id: str, value: str, **kw: Any) -> requests.Response:
        return self.post(self.action_body(action_id, value, **kw))


@pytest.fixture
def bot(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack
) -> Iterator[SlackSender]:
    from integration_signals.bot.http import slack_router

    app = FastAPI()
    app.include_router(slack_router(engine, config, settings))
    server, url = serve(app)
    yield SlackSender(url, slack)
    server.should_exit = True


ACCOUNTS = [
    {
        "account_id": "acme",
        "name": "Acme Corp",
        "domain": "acme.com",
        "segment": "enterprise",
        "plan": "enterprise",
        "mrr": 8500,
        "csm": "dana@example.com",
        "owner": "U0SALES",
        "salesforce_id": "001A000001",
        "hubspot_id": "9001",
        "created_at": "2024-05-01",
    },
    {
        "account_id": "acme-labs",
        "name": "Acme Labs",
        "domain": "acmelabs.io",
        "segment": "smb",
        "plan": "starter",
        "mrr": 300,
    },
    {
        "account_id": "acme-logistics",
        "name": "Acme Logistics",
        "domain": "acmelogistics.com",
        "segment": "mid_market",
        "plan": "growth",
        "mrr": 2100,
    },
    {
        "account_id": "globex",
        "name": "Globex",
        "domain": "globex.com",
        "segment": "mid_market",
        "plan": "growth",
        "mrr": 1900,
    },
    {
        "account_id": "initech",
        "name": "Initech",
        "domain": "initech.io",
        "segment": "smb",
        "plan": "starter",
        "mrr": 250,
    },
]


@pytest.fixture
def accounts(engine: Engine) -> list[dict[str, Any]]:
    import_account_objects(engine, ACCOUNTS, source="test", now=NOW - timedelta(days=400))
    return ACCOUNTS


def add_task(engine: Engine, **values: Any) -> int:
    row = {
        "account_id": "acme",
        "signal_kind": "health_degradation",
        "title": "Zendesk sync success at 72%: call the customer",
        "body": "15 of 52 Zendesk syncs failed this week.",
        "owner": "dana@example.com",
        "due_at": NOW + timedelta(hours=4),
        "status": "open",
        "created_at": NOW,
        "updated_at": NOW,
        **values,
    }
    with engine.begin() as conn:
        return conn.execute(Task.__table__.insert().values(**row)).inserted_primary_key[0]


def task_row(engine: Engine, task_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Task.__table__).where(Task.id == task_id)).one()._mapping)
