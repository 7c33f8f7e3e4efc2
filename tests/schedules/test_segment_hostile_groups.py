"""Segment ``group`` calls follow the identifier rule of events on both databases:
a control character or lone surrogate in ``groupId`` refuses that account with a
reason naming the field (counted, quarantined), free text in its traits is
cleaned, and the rest of the batch lands."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from integration_signals.config import Settings, load_config
from integration_signals.schedules.server import create_app
from integration_signals.store.models import Account, Event, Quarantine
from tests.schedules.conftest import TOKEN

WHEN = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0).isoformat()


@pytest.fixture
def api(engine: Engine, live_app: Callable[[Any], str]) -> Iterator[str]:
    settings = Settings(signals_ingest_token=SecretStr(TOKEN), signals_database_url="unused")
    yield live_app(create_app(engine, load_config(None), settings))


def _group(group_id: Any, **traits: Any) -> dict[str, Any]:
    return {"type": "group", "groupId": group_id, "traits": traits}


BAD_IDS = {
    "acct\u0000nul": "U+0000",
    "acct\u001b[31m": "U+001B",
    "acct\u0085": "U+0085",
    "acct\u007f": "U+007F",
    "acct\u001f": "U+001F",
}


def test_a_control_character_in_group_id_refuses_only_that_account(
    api: str, engine: Engine
) -> None:
    batch: list[dict[str, Any]] = [_group("acme", name="Acme\u0000 Corp", note="n\u0007")]
    batch += [_group(bad, name="Bad") for bad in BAD_IDS]
    batch += [_group("x" * 300, name="Long")]
    batch.append(
        {
            "type": "track",
            "event": "Integration Installed",
            "messageId": "m-1",
            "timestamp": WHEN,
            "properties": {"account_id": "acme", "integration": "slack"},
        }
    )
    body = json.dumps({"batch": batch}).encode()
    # a lone surrogate as JSON writes it (json.dumps would escape a real one the same)
    body = body.replace(b'"batch": [', b'"batch": [{"type": "group", "groupId": "s\\ud800"}, ', 1)
    answer = httpx.post(
        f"{api}/v1/batch",
        content=body,
        headers={"Content-Type": "application/json"},
        auth=(TOKEN, ""),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["accepted"] == 1
    accounts = data["accounts"]
    assert accounts["imported"] == 1
    assert accounts["quarantined"] == len(BAD_IDS) + 2
    reasons = [p["reason"] for p in accounts["problems"]]
    assert any("account_id contains a lone surrogate (U+D800" in r for r in reasons)
    for code in BAD_IDS.values():
        assert any(f"account_id contains a control character ({code}" in r for r in reasons)
    assert any("account_id is longer than 256 characters" in r for r in reasons)

    with engine.connect() as conn:
        rows = conn.execute(select(Account.__table__)).all()
        quarantined = conn.execute(select(Quarantine.__table__)).all()
        stored_events = conn.execute(select(Event.__table__)).all()
    assert [r.account_id for r in rows] == ["acme"]
    assert rows[0].name == "Acme\ufffd Corp"
    assert rows[0].traits == {"note": "n\ufffd"}
    assert len(stored_events) == 1
    assert len(quarantined) == len(BAD_IDS) + 2
    for row in quarantined:
        assert "\x00" not in row.raw and "\x1b" not in row.raw
        assert row.source == "accounts:segment"


def test_the_same_batch_sent_twice_quarantines_each_account_once(api: str, engine: Engine) -> None:
    body = {"batch": [_group("a\u0000b"), _group("fine", plan="p")]}
    for _ in range(2):
        data = httpx.post(f"{api}/v1/batch", json=body, auth=(TOKEN, ""), timeout=30).json()
        assert data["accounts"]["imported"] == 1
        assert data["accounts"]["quarantined"] == 1
    with engine.connect() as conn:
        assert len(conn.execute(select(Quarantine.__table__)).all()) == 1
        assert [r.account_id for r in conn.execute(select(Account.__table__)).all()] == ["fine"]
