"""Fixtures for the dashboard: the whole `signals serve` app (ingest API, Slack endpoint,
/healthz and the web) on an ephemeral port over real sockets, a small scored store,
users of each role, a fake Slack Web API, and a browser-like client that signs in."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from integration_signals.config import Config, Settings, load_config
from integration_signals.schedules.server import create_app
from integration_signals.scoring.run import score_accounts
from integration_signals.web.auth import add_user
from tests.bot.conftest import ACCOUNTS
from tests.fakes.slack import FakeSlack
from tests.schedules.conftest import TOKEN, live_app  # noqa: F401  (fixture)
from tests.scoring.builders import Feed, import_accounts

PASSWORD = "correct horse battery"
USERS = {"admin": "ada@example.com", "csm": "dana@example.com", "viewer": "vic@example.com"}
NOW = datetime.now(UTC).replace(microsecond=0)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def config_with(**web: Any) -> Config:
    base = load_config(None)
    return base.model_copy(update={"web": base.web.model_copy(update=web)})


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()
    assert fake.rejected == [], f"Slack refused a message: {fake.rejected}"


@pytest.fixture
def settings(slack: FakeSlack) -> Settings:
    return Settings(
        signals_database_url="unused",
        signals_ingest_token=SecretStr(TOKEN),
        slack_bot_token=SecretStr("xoxb-test-token"),
        slack_signing_secret=SecretStr("8f742231b10e8888abcd99yyyzzz85a5"),
        slack_api_url=slack.api_url,
        slack_tasks_channel="C0TASKS",
    )


@pytest.fixture
def config() -> Config:
    return load_config(None)


def seed(engine: Engine, config: Config, accounts: list[dict[str, Any]] = ACCOUNTS) -> None:
    """Accounts, two integrations of Acme's (Zendesk failing this week), scores."""
    import_accounts(engine, accounts, now=NOW)
    feed = Feed(end=NOW)
    for integration in ("salesforce", "zendesk"):
        feed.install("acme", integration, 40, bidirectional=True, custom_fields=4)
        feed.syncs("acme", integration, range(39, 6, -1), per_day=3, records=800)
    feed.syncs("acme", "salesforce", range(6, -1, -1), per_day=3, records=900)
    feed.syncs("acme", "zendesk", range(6, -1, -1), per_day=1, failures=3)
    feed.ingest(engine, now=NOW)
    score_accounts(engine, config, as_of=NOW, full=True)
    for role, email in USERS.items():
        add_user(engine, email, role=role, password=PASSWORD, now=NOW)


@dataclass
class Browser:
    """A browser-like client over real HTTP: keeps cookies, never follows redirects by
    itself (tests assert on them)."""

    url: str
    client: httpx.Client

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(self.url + path, **kw)

    def post(self, path: str, data: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return self.client.post(self.url + path, data=data or {}, **kw)

    def login(self, email: str, password: str = PASSWORD, next: str = "/") -> httpx.Response:
        return self.post("/login", {"email": email, "password": password, "next": next})

    def csrf(self, path: str = "/accounts/acme") -> str:
        found = CSRF.search(self.get(path).text)
        assert found, "no csrf_token on the page"
        return found.group(1)


@pytest.fixture
def serve_web(
    engine: Engine,
    settings: Settings,
    live_app: Callable[[Any], str],  # noqa: F811
) -> Callable[..., str]:
    """Start `signals serve`'s app (no scheduler) with the given config; its URL."""

    def start(config: Config | None = None) -> str:
        return live_app(create_app(engine, config or load_config(None), settings))

    return start


@pytest.fixture
def site(engine: Engine, config: Config, serve_web: Callable[..., str]) -> str:
    seed(engine, config)
    return serve_web(config)


@pytest.fixture
def browser(site: str) -> Iterator[Callable[..., Browser]]:
    """``browser()`` a fresh anonymous browser; ``browser("csm")`` one signed in as
    that role."""
    clients: list[httpx.Client] = []

    def make(role: str | None = None) -> Browser:
        client = httpx.Client(timeout=30, follow_redirects=False)
        clients.append(client)
        b = Browser(site, client)
        if role is not None:
            answer = b.login(USERS[role])
            assert answer.status_code == 303, answer.text
        return b

    yield make
    for client in clients:
        client.close()
