"""The ingest API: the one ingest path behind a bearer token, and every refusal leaves
the store exactly as it was."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from integration_signals.config import Config, Settings, load_config
from integration_signals.schedules.server import create_app
from integration_signals.store.models import Account, Event, Quarantine
from tests.schedules.conftest import TOKEN

NOW = datetime.now(UTC).replace(microsecond=0)


def event(i: int, **extra: Any) -> dict[str, Any]:
    data = {
        "event_id": f"h-{i}",
        "type": "sync.succeeded",
        "occurred_at": (NOW - timedelta(hours=i)).isoformat().replace("+00:00", "Z"),
        "account_id": "acme",
        "integration": "salesforce",
        "records": 100,
        "trigger": "scheduled",
    }
    data.update(extra)
    return data


def config_with(**serve: Any) -> Config:
    base = load_config(None)
    return base.model_copy(update={"serve": base.serve.model_copy(update=serve)})


def store_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            model.__tablename__: conn.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Event, Quarantine, Account)
        }


@pytest.fixture
def api(engine: Engine, live_app: Callable[[Any], str]) -> Iterator[str]:
    settings = Settings(signals_ingest_token=SecretStr(TOKEN), signals_database_url="unused")
    yield live_app(create_app(engine, config_with(max_body_bytes=4096), settings))


def post(
    url: str, body: bytes | str, *, token: str | None = TOKEN, **headers: str
) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(url, content=body, headers=headers, timeout=30)


def test_a_json_array_is_ingested_and_answered_with_accepted_duplicates_quarantined(
    api: str, engine: Engine
) -> None:
    body = [event(1), event(2), event(1), {"event_id": "x", "type": "nope"}]
    response = post(f"{api}/v1/events", json.dumps(body), **{"content-type": "application/json"})
    assert response.status_code == 200, response.text
    data = response.json()
    assert (data["accepted"], data["duplicates"], data["quarantined"]) == (2, 1, 1)
    assert data["reasons"] == [{"line": 4, "reason": "type 'nope' is not a known event type"}]
    assert "after_ingest" in data
    assert store_counts(engine) == {"events": 2, "quarantine": 1, "accounts": 1}

    again = post(f"{api}/v1/events", json.dumps(body)).json()
    assert (again["accepted"], again["duplicates"], again["quarantined"]) == (0, 3, 1)
    assert store_counts(engine) == {"events": 2, "quarantine": 1, "accounts": 1}


def test_ndjson_is_ingested_line_by_line(api: str, engine: Engine) -> None:
    body = "\n".join(json.dumps(event(i)) for i in range(5)) + "\n\n"
    data = post(f"{api}/v1/events", body, **{"content-type": "application/x-ndjson"}).json()
    assert data["accepted"] == 5
    assert store_counts(engine)["events"] == 5


def test_a_gzipped_body_is_accepted(api: str, engine: Engine) -> None:
    body = gzip.compress(json.dumps([event(1), event(2)]).encode())
    response = post(f"{api}/v1/events", body, **{"content-encoding": "gzip"})
    assert response.json()["accepted"] == 2


REFUSALS = [
    pytest.param(None, b"[]", {}, 401, "missing credentials", id="no-token"),
    pytest.param("wrong-token", b"[]", {}, 401, "bad credentials", id="wrong-token"),
    pytest.param(
        TOKEN,
        b"[" + b'{"event_id": "big"},' * 400 + b"{}]",
        {},
        413,
        "larger than 4,096",
        id="too-large",
    ),
    pytest.param(
        TOKEN,
        gzip.compress(b"[" + b"{}," * 10_000 + b"{}]"),
        {"content-encoding": "gzip"},
        413,
        "larger than 4,096",
        id="gzip-bomb",
    ),
    pytest.param(TOKEN, b'[{"event_id": "a1", "type": ', {}, 400, "not valid JSON", id="cut-json"),
    pytest.param(TOKEN, b"   ", {}, 400, "body is empty", id="empty"),
    pytest.param(TOKEN, b"x", {"content-encoding": "br"}, 415, "use gzip", id="unknown-encoding"),
]


@pytest.mark.parametrize(("token", "body", "headers", "status", "message"), REFUSALS)
def test_refused_requests_change_nothing(
    api: str,
    engine: Engine,
    token: str | None,
    body: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    post(f"{api}/v1/events", json.dumps([event(9)]))
    before = store_counts(engine)
    response = post(f"{api}/v1/events", body, token=token, **headers)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert store_counts(engine) == before


def test_a_body_streamed_without_length_is_cut_off_at_the_limit(api: str, engine: Engine) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"["
        for i in range(200):
            yield json.dumps(event(i)).encode() + b","
        yield b"{}]"

    response = httpx.post(
        f"{api}/v1/events",
        content=chunks(),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 413
    assert store_counts(engine) == {"events": 0, "quarantine": 0, "accounts": 0}


def test_without_a_configured_token_the_api_refuses_everything(
    engine: Engine, live_app: Callable[[Any], str]
) -> None:
    url = live_app(create_app(engine, load_config(None), Settings(signals_database_url="x")))
    response = post(f"{url}/v1/events", json.dumps([event(1)]), token="anything")
    assert response.status_code == 401
    assert "SIGNALS_INGEST_TOKEN" in response.json()["error"]
    assert store_counts(engine)["events"] == 0


def test_the_token_never_appears_in_an_answer(api: str) -> None:
    for response in (
        post(f"{api}/v1/events", b"[", token=TOKEN),
        post(f"{api}/v1/events", b"[]", token="nope"),
        httpx.get(f"{api}/healthz"),
    ):
        assert TOKEN not in response.text


def test_healthz_reports_the_database(api: str) -> None:
    response = httpx.get(f"{api}/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok"
    assert data["database"]["ok"] is True


def test_accepted_events_get_their_accounts_rescored_in_the_background(
    api: str, engine: Engine
) -> None:
    from integration_signals.store.models import AccountScore
    from tests.schedules.conftest import wait_for

    data = post(f"{api}/v1/events", json.dumps([event(i) for i in range(1, 8)])).json()
    assert data["after_ingest"] == {"accounts": 1, "queued": 1}

    def scored() -> bool:
        with engine.connect() as conn:
            return (
                conn.execute(
                    select(AccountScore.__table__.c.score).where(
                        AccountScore.__table__.c.account_id == "acme"
                    )
                ).first()
                is not None
            )

    wait_for(scored, timeout=30, what="acme to be scored")
    assert (
        wait_for(
            lambda: httpx.get(f"{api}/healthz").json()["rescore"]["rounds"],
            timeout=10,
            what="a rescoring round",
        )
        >= 1
    )


def test_a_bad_ndjson_line_is_quarantined_like_a_file_line_and_the_others_land(
    api: str, engine: Engine
) -> None:
    body = json.dumps(event(1)).encode() + b'\n{"event_id": oops}\n' + json.dumps(event(2)).encode()
    data = post(f"{api}/v1/events", body).json()
    assert (data["accepted"], data["quarantined"]) == (2, 1)
    assert data["reasons"][0]["line"] == 2
    assert data["reasons"][0]["reason"].startswith("not valid JSON")
