"""Fixtures for the syncs tests: accounts with current scores in the store (our own
data, inserted through the tables scoring and signals write), fake CRMs at the HTTP
boundary, and a config with short waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import Engine, delete

from integration_signals.store import models
from integration_signals.store.sql import upsert
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.salesforce import INSTANCE, FakeSalesforce

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TOKEN = "pat-na1-0123456789abcdef-SECRET"

FAST_CONFIG = """
[syncs]
backoff_initial_seconds = 0.01
backoff_max_seconds = 0.2
request_timeout_seconds = 2.0

[syncs.salesforce]
bulk_poll_seconds = 0
bulk_threshold = 400

[syncs.hubspot]
requests_per_window = 100
window_seconds = 10.0
search_per_second = 5
"""


def seed_scores(
    engine: Engine,
    rows: list[dict[str, Any]],
    *,
    scored_at: datetime = NOW,
) -> None:
    """Accounts plus their current account_scores rows. Each row: account_id and any of
    name, domain, mrr, salesforce_id, hubspot_id, score, band, segments,
    active_integrations, reason."""
    accounts, scores = [], []
    for r in rows:
        accounts.append(
            {
                "account_id": r["account_id"],
                "name": r.get("name", r["account_id"].title()),
                "domain": r.get("domain"),
                "mrr": r.get("mrr", 1000.0),
                "salesforce_id": r.get("salesforce_id"),
                "hubspot_id": r.get("hubspot_id"),
                "is_stub": False,
            }
        )
        scores.append(
            {
                "account_id": r["account_id"],
                "as_of": scored_at,
                "scored_at": scored_at,
                "score": r.get("score", 80),
                "band": r.get("band", "healthy"),
                "stage": "scored",
                "components": {},
                "reason": r.get("reason", "Zendesk: 85% sync success"),
                "segments": r.get("segments", []),
                "active_integrations": r.get("active_integrations", 4),
                "percentiles": {},
            }
        )
    with engine.begin() as conn:
        upsert(
            conn,
            models.Account.__table__,
            accounts,
            keys=["account_id"],
            update=lambda ex: {
                c: getattr(ex, c) for c in ("name", "domain", "mrr", "salesforce_id", "hubspot_id")
            },
        )
        upsert(
            conn,
            models.AccountScore.__table__,
            scores,
            keys=["account_id"],
            update=lambda ex: {
                c: getattr(ex, c)
                for c in ("score", "band", "segments", "active_integrations", "reason", "scored_at")
            },
        )


def clear_scores(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(models.AccountScore.__table__))


def hubspot_rows(n: int, *, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "account_id": f"acct-{i:05d}",
            "hubspot_id": str(10_000 + i),
            "score": 50 + i % 50,
            "band": "healthy" if i % 50 >= 25 else "watch",
            **extra,
        }
        for i in range(start, start + n)
    ]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "syncs-test.toml"
    path.write_text(FAST_CONFIG)
    return path


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot(token=TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def hubspot_env(hubspot: FakeHubSpot, config_path: Path) -> dict[str, str]:
    return {
        "HUBSPOT_ACCESS_TOKEN": TOKEN,
        "HUBSPOT_API_URL": hubspot.url,
        "SIGNALS_CONFIG": str(config_path),
    }


SF_TOKEN = "00Dxx0000001gPL!AR8AQJXg.SECRET-session"


@pytest.fixture
def salesforce() -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce(token=SF_TOKEN)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.register(rsps)
        yield fake


@pytest.fixture
def salesforce_env(salesforce: FakeSalesforce, config_path: Path) -> dict[str, str]:
    return {
        "SALESFORCE_INSTANCE_URL": f"https://{INSTANCE}",
        "SALESFORCE_ACCESS_TOKEN": SF_TOKEN,
        "SIGNALS_CONFIG": str(config_path),
    }


def salesforce_rows(n: int, fake: FakeSalesforce, *, start: int = 0) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, start + n):
        record_id = fake.add_account(f"001SEED{i:011d}", Name=f"Account {i}")
        rows.append(
            {
                "account_id": f"acct-{i:05d}",
                "salesforce_id": record_id,
                "score": 50 + i % 50,
                "band": "healthy" if i % 50 >= 25 else "watch",
            }
        )
    return rows
