"""Secrets stay out of every record, whatever the other side answers: a HubSpot or a
Salesforce that echoes the request (the bearer token or session id in it) in every error
message, with every secret variable set, leaves no secret value in stdout, stderr, logs
or the database."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.fakes.hubspot import PROPERTIES, FakeHubSpot, Fault
from tests.fakes.salesforce import FakeSalesforce
from tests.fakes.salesforce import Fault as SalesforceFault
from tests.leaks import assert_clean, assert_results_clean, db_text, secret_env
from tests.syncs.conftest import (
    FAST_CONFIG,
    SF_TOKEN,
    TOKEN,
    hubspot_rows,
    salesforce_rows,
    seed_scores,
)
from tests.syncs.test_salesforce import add_task


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
    secrets, values = secret_env(HUBSPOT_ACCESS_TOKEN=TOKEN)
    env = {**hubspot_env, **secrets}
    caplog.set_level(logging.DEBUG)

    synced = cli("sync", "hubspot", "--json", env=env)
    assert "request headers" in synced.stdout  # the vendor did echo them
    assert "***" in synced.stdout

    hubspot.faults.append(Fault(PROPERTIES, status=400, body={"message": "bad"}, times=50))
    provisioned = cli("provision", "hubspot", env=env)
    history = cli("sync", "history", "--json", env=env)

    assert_results_clean({"sync": synced, "provision": provisioned, "history": history}, values)
    assert_clean("logs", "\n".join(r.getMessage() for r in caplog.records), values)
    assert_clean("the database", db_text(engine), values)


def test_an_echoing_salesforce_leaks_no_secret_anywhere(
    cli: Any,
    engine: Engine,
    salesforce: FakeSalesforce,
    salesforce_env: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Per record (a refused Account, a refused Task), per run (describe refused), a
    re-login whose fault echoes the SOAP request with the password in it, and a session
    id obtained by logging in (no setting holds it) echoed by the next error."""
    salesforce.echo_headers = True
    config = tmp_path / "tasks.toml"
    config.write_text(
        FAST_CONFIG.replace("bulk_threshold = 400", "bulk_threshold = 400\nplaybook_tasks = true")
    )
    rows = salesforce_rows(4, salesforce)
    seed_scores(engine, rows)
    salesforce.refuse[rows[0]["salesforce_id"]] = ("UNABLE_TO_LOCK_ROW", "locked")
    add_task(engine, 1, "acct-00001")
    add_task(engine, 2, "acct-00002")
    secrets, values = secret_env(SALESFORCE_ACCESS_TOKEN=SF_TOKEN)
    env = {
        **salesforce_env,
        **secrets,
        "SIGNALS_CONFIG": str(config),
        "SALESFORCE_USERNAME": "integration@acme.example",
    }
    caplog.set_level(logging.DEBUG)

    # One Task refused, its message built from the vendor's answer.
    salesforce.faults.append(
        SalesforceFault(
            "PATCH",
            r"composite/sobjects/Task/.*",
            status=200,
            body=[
                {
                    "success": False,
                    "errors": [{"statusCode": "INVALID_INPUT", "message": "no", "fields": []}],
                },
                {"success": True, "id": "00TFAKE00000000001", "errors": [], "created": True},
            ],
        )
    )
    synced = cli("sync", "salesforce", "--json", env=env)
    assert "request headers" in synced.stdout  # the vendor did echo them
    assert "***" in synced.stdout

    salesforce.refuse.clear()
    salesforce.faults.append(
        SalesforceFault(
            "GET",
            r"sobjects/Account/describe",
            status=400,
            body=[{"errorCode": "INVALID_TYPE", "message": "sObject type 'Account' refused"}],
            times=50,
        )
    )
    rows[1]["score"] = 11
    seed_scores(engine, rows)
    refused = cli("sync", "salesforce", "--json", env=env)
    assert refused.exit_code == 1

    salesforce.faults.clear()
    salesforce.expire_sessions()  # the session is gone and the password is wrong
    relogin = cli("sync", "salesforce", "--json", env=env)
    assert relogin.exit_code == 1 and salesforce.logins == 0

    # The password is right: a new session, which the next error echoes in turn.
    salesforce.password = secrets["SALESFORCE_PASSWORD"]
    salesforce.faults.append(
        SalesforceFault(
            "PATCH",
            r"composite/sobjects",
            status=400,
            body=[{"errorCode": "INVALID_INPUT", "message": "refused"}],
            times=50,
        )
    )
    new_session = cli("sync", "salesforce", "--json", env=env)
    assert new_session.exit_code == 1 and salesforce.logins == 1
    assert "request headers" in new_session.stdout
    values += [t for t in salesforce.tokens if t != SF_TOKEN]  # the login's session id
    history = cli("sync", "history", "--json", env=env)

    assert_results_clean(
        {
            "sync": synced,
            "refused": refused,
            "relogin": relogin,
            "new session": new_session,
            "history": history,
        },
        values,
    )
    assert_clean("logs", "\n".join(r.getMessage() for r in caplog.records), values)
    assert_clean("the database", db_text(engine), values)
