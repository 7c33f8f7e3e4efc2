"""Segment's tracking spec at POST /v1/batch, sent by the official Segment Python
library (a client we did not write), lands as events and account traits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from segment.analytics.client import Client
from segment.analytics.request import APIError
from sqlalchemy import Engine, func, select

from integration_signals.config import Settings, load_config
from integration_signals.schedules.segment import map_batch, track_names
from integration_signals.schedules.server import create_app
from integration_signals.store.models import Account, Event
from tests.schedules.conftest import TOKEN

WHEN = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


@pytest.fixture
def api(engine: Engine, live_app: Callable[[Any], str]) -> Iterator[str]:
    settings = Settings(signals_ingest_token=SecretStr(TOKEN), signals_database_url="unused")
    yield live_app(create_app(engine, load_config(None), settings))


def events(engine: Engine) -> dict[str, Event]:
    with engine.connect() as conn:
        rows = conn.execute(select(Event.__table__)).all()
    return {r.event_id: r for r in rows}


def account(engine: Engine, account_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(Account.__table__).where(Account.__table__.c.account_id == account_id)
        ).one_or_none()


def test_track_and_group_calls_from_the_segment_library_land_as_events_and_traits(
    api: str, engine: Engine
) -> None:
    client = Client(TOKEN, host=api, sync_mode=True, max_retries=0)
    client.group(
        user_id="u-1",
        group_id="acme",
        traits={
            "name": "Acme Corp",
            "plan": "enterprise-annual",
            "industry": "manufacturing",
            "website": "https://www.acme.com",
            "employees": 2300,
            "segment": "enterprise",
            "apiLimitDaily": 50000,
            "favourite_color": "teal",
        },
    )
    client.track(
        user_id="u-1",
        event="Integration Sync Succeeded",
        properties={
            "integration": "zendesk",
            "connection_id": "acme-zd-1",
            "records": 1500,
            "api_calls": 12,
            "trigger": "scheduled",
            "sync_mode": "incremental",
        },
        context={"groupId": "acme"},
        timestamp=WHEN,
        message_id="seg-1",
    )
    client.track(
        user_id="u-2",
        event="Integration Sync Failed",
        properties={"account_id": "globex", "integration": "salesforce", "error": "TIMEOUT"},
        timestamp=WHEN,
        message_id="seg-2",
    )
    client.track(user_id="u-2", event="Page Viewed", properties={"path": "/"}, message_id="seg-3")
    client.identify(user_id="u-2", traits={"email": "a@b.c"})

    stored = events(engine)
    assert set(stored) == {"seg-1", "seg-2"}
    ok = stored["seg-1"]
    assert (ok.type, ok.account_id, ok.integration, ok.connection_id) == (
        "sync.succeeded",
        "acme",
        "zendesk",
        "acme-zd-1",
    )
    assert (ok.records, ok.api_calls, ok.trigger) == (1500, 12, "scheduled")
    assert ok.properties == {"sync_mode": "incremental"}
    assert ok.occurred_at.replace(tzinfo=UTC) == WHEN
    failed = stored["seg-2"]
    assert (failed.type, failed.account_id, failed.error) == ("sync.failed", "globex", "TIMEOUT")

    acme = account(engine, "acme")
    assert (acme.name, acme.plan, acme.industry, acme.domain) == (
        "Acme Corp",
        "enterprise-annual",
        "manufacturing",
        "https://www.acme.com",
    )
    assert (acme.employees, acme.segment, acme.api_limit_daily) == (2300, "enterprise", 50000)
    assert acme.traits == {"favourite_color": "teal"}
    assert acme.is_stub is False
    assert account(engine, "globex").is_stub is True


def test_batches_sent_gzipped_by_the_library_are_counted_once_when_retried(
    api: str, engine: Engine
) -> None:
    client = Client(TOKEN, host=api, gzip=True, upload_size=50, max_retries=0, send=True)
    for i in range(120):
        client.track(
            user_id="u",
            event="integration_api_calls",
            properties={"integration": "hubspot", "api_calls": i},
            context={"groupId": "initech"},
            timestamp=WHEN,
            message_id=f"m-{i}",
        )
    client.flush()
    client.join()
    # The same messages again (a retried delivery): duplicates, nothing added.
    replay = httpx.post(
        f"{api}/v1/batch",
        json={
            "batch": [
                {
                    "type": "track",
                    "event": "Integration API Calls",
                    "messageId": "m-7",
                    "timestamp": WHEN.isoformat(),
                    "context": {"groupId": "initech"},
                    "properties": {"integration": "hubspot", "api_calls": 7},
                }
            ]
        },
        auth=(TOKEN, ""),
        timeout=30,
    ).json()
    assert (replay["accepted"], replay["duplicates"]) == (0, 1)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(Event)).scalar_one()
        calls = conn.execute(select(func.sum(Event.__table__.c.api_calls))).scalar_one()
    assert total == 120
    assert calls == sum(range(120))


def test_a_wrong_write_key_is_refused_and_nothing_is_stored(api: str, engine: Engine) -> None:
    client = Client("not-the-key", host=api, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as refused:
        client.track(
            user_id="u",
            event="Integration Installed",
            properties={"account_id": "a", "integration": "x"},
        )
    assert refused.value.status == 401
    assert events(engine) == {}


def test_a_track_call_breaking_the_contract_is_quarantined_with_its_position(
    api: str, engine: Engine
) -> None:
    body = {
        "batch": [
            {
                "type": "track",
                "event": "Integration Installed",
                "messageId": "q-1",
                "timestamp": WHEN.isoformat(),
                "properties": {"integration": "slack"},
            },
            {"type": "group", "groupId": "hooli", "traits": {"segment": "galactic"}},
        ]
    }
    data = httpx.post(f"{api}/v1/batch", json=body, auth=(TOKEN, ""), timeout=30).json()
    assert data["quarantined"] == 1
    assert data["reasons"] == [{"line": 1, "reason": "account_id is required"}]
    assert data["accounts"]["quarantined"] == 1
    assert "segment 'galactic'" in data["accounts"]["problems"][0]["reason"]


@pytest.mark.parametrize(
    ("name", "etype"),
    [
        ("Integration Sync Succeeded", "sync.succeeded"),
        ("integration sync failed", "sync.failed"),
        ("Sync Succeeded", "sync.succeeded"),
        ("sync.succeeded", "sync.succeeded"),
        ("Integration Installed", "integration.installed"),
        ("Integration Setup Started", "integration.setup_started"),
        ("IntegrationSetupFailed", "integration.setup_failed"),
        ("Integration Configured", "integration.configured"),
        ("Integration Uninstalled", "integration.uninstalled"),
        ("Integration Auth Expired", "auth.expired"),
        ("Auth Restored", "auth.restored"),
        ("API Calls", "api.calls"),
        ("Connector Synced", "sync.succeeded"),  # from config
        ("Page Viewed", None),
    ],
    ids=lambda v: str(v),
)
def test_track_names_map_to_event_types(name: str, etype: str | None) -> None:
    names = track_names({"Connector Synced": "sync.succeeded"})
    mapped = map_batch([{"type": "track", "event": name, "messageId": "m"}], names)
    assert [e["type"] for _, e in mapped.events] == ([etype] if etype else [])
    assert sum(mapped.ignored.values()) == (0 if etype else 1)


def test_a_configured_name_for_an_unknown_type_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="not an event type"):
        track_names({"Thing Happened": "thing.happened"})
