"""Secrets stay out of every record, whatever the other side answers: a HubSpot that
echoes the request headers (the bearer token among them) in every error message, with
every secret variable set, leaves no secret value in stdout, stderr, logs or the
database."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select

from tests.fakes.hubspot import PROPERTIES, FakeHubSpot, Fault
from tests.syncs.conftest import TOKEN, hubspot_rows, seed_scores

SECRETS = {
    "SIGNALS_INGEST_TOKEN": "ingest-secret-7f1c2b",
    "SIGNALS_PULL_URL": "postgresql://reader:pull-pass-93ad@127.0.0.1:1/src",
    "SLACK_BOT_TOKEN": "xoxb-bot-secret-4242",
    "SLACK_SIGNING_SECRET": "signing-secret-8e8e",
    "SLACK_APP_TOKEN": "xapp-app-secret-1717",
    "SALESFORCE_ACCESS_TOKEN": "00Dsf-secret-session-55",
}
VALUES = [TOKEN, "pull-pass-93ad", *(v for k, v in SECRETS.items() if k != "SIGNALS_PULL_URL")]


def db_text(engine: Engine) -> str:
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return "\n".join(
            repr(row) for table in meta.sorted_tables for row in conn.execute(select(table))
        )


def assert_clean(where: str, text: str) -> None:
    for value in VALUES:
        assert value not in text, f"a secret ({value[:6]}...) in {where}"


def test_an_echoing_hubspot_leaks_no_secret_anywhere(
    cli: Any,
    engine: Engine,
    hubspot: FakeHubSpot,
    hubspot_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hubspot.echo_headers = True
    rows = hubspot_rows(4)
    seed_scores(engine, rows)
    for r in rows:
        hubspot.add_company(r["hubspot_id"])
    hubspot.refuse[rows[0]["hubspot_id"]] = "refused"  # a per-record (207) error
    env = {**hubspot_env, **SECRETS}
    caplog.set_level(logging.DEBUG)

    synced = cli("sync", "hubspot", "--json", env=env)
    assert "request headers" in synced.stdout  # the vendor did echo them
    assert "***" in synced.stdout

    hubspot.faults.append(Fault(PROPERTIES, status=400, body={"message": "bad"}, times=50))
    provisioned = cli("provision", "hubspot", env=env)
    history = cli("sync", "history", "--json", env=env)

    for name, result in (("sync", synced), ("provision", provisioned), ("history", history)):
        assert_clean(f"{name} stdout", result.stdout)
        assert_clean(f"{name} stderr", result.stderr if result.stderr_bytes else "")
    assert_clean("logs", "\n".join(r.getMessage() for r in caplog.records))
    assert_clean("the database", db_text(engine))
