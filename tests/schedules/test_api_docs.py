"""/openapi.json and /docs: the ingest API, health and metrics documented; the web pages
and Slack's endpoint left out; the docs page needs no network and no script."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from integration_signals.config import Settings, load_config
from integration_signals.schedules.server import create_app
from tests.schedules.conftest import TOKEN


@pytest.fixture
def api(engine: Engine, live_app: Callable[[Any], str]) -> Iterator[str]:
    settings = Settings(signals_ingest_token=SecretStr(TOKEN), signals_database_url="unused")
    yield live_app(create_app(engine, load_config(None), settings))


def test_openapi_lists_exactly_the_api_paths(api: str) -> None:
    response = httpx.get(f"{api}/openapi.json", timeout=10)
    assert response.status_code == 200
    document = response.json()
    assert sorted(document["paths"]) == ["/healthz", "/metrics", "/v1/batch", "/v1/events"]
    assert TOKEN not in response.text


def test_the_ingest_endpoints_document_their_body_auth_and_every_answer(api: str) -> None:
    document = httpx.get(f"{api}/openapi.json", timeout=10).json()
    events = document["paths"]["/v1/events"]["post"]
    assert set(events["requestBody"]["content"]) == {"application/json", "application/x-ndjson"}
    item = events["requestBody"]["content"]["application/json"]["schema"]["items"]
    assert {"event_id", "type", "occurred_at", "account_id", "integration"} <= set(item["required"])
    assert events["security"] == [{"bearerAuth": []}]
    assert {"200", "400", "401", "413", "415", "500"} <= set(events["responses"])
    refusal = events["responses"]["401"]["content"]["application/json"]
    assert refusal["schema"] == {"$ref": "#/components/schemas/Refusal"}
    assert refusal["examples"]["unauthorized"]["value"]["code"] == "unauthorized"
    answer = document["components"]["schemas"]["IngestAnswer"]["properties"]
    assert {"accepted", "duplicates", "quarantined", "reasons", "after_ingest"} <= set(answer)

    batch = document["paths"]["/v1/batch"]["post"]
    assert batch["requestBody"]["content"]["application/json"]["schema"]["required"] == ["batch"]
    assert {"basicAuth": []} in batch["security"]
    assert {"200", "400", "401", "413"} <= set(batch["responses"])
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["basicAuth"]["scheme"] == "basic"


def test_the_documented_refusal_is_the_one_the_api_answers(api: str) -> None:
    document = httpx.get(f"{api}/openapi.json", timeout=10).json()
    fields = set(document["components"]["schemas"]["Refusal"]["properties"])
    answer = httpx.post(f"{api}/v1/events", content=b"[]", timeout=10)
    assert answer.status_code == 401
    assert set(answer.json()) == fields


def test_docs_is_a_page_without_external_urls_or_scripts_under_the_dashboard_csp(
    api: str,
) -> None:
    response = httpx.get(f"{api}/docs", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page = response.text
    for path in ("/v1/events", "/v1/batch", "/healthz", "/metrics"):
        assert path in page
    assert "Authorization: Bearer $SIGNALS_INGEST_TOKEN" in page
    assert "<script" not in page and "style=" not in page and "<style" not in page
    urls = re.findall(r"""(?:href|src)=["']?([^"' >]+)""", page)
    assert urls and all(u.startswith(("/", "#")) for u in urls), urls
    assert "http://" not in page.replace("http://localhost:8000", "")
    assert "https://" not in page
    css = httpx.get(f"{api}/docs/docs.css", timeout=10)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
