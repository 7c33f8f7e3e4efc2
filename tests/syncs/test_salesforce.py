"""Salesforce end to end through `signals sync salesforce` against a fake Salesforce
(`responses` at the requests transport): Collections and Bulk 2.0, describe, matching
by Website, rejections, session expiry, faults."""

from __future__ import annotations

import json
import logging
import math

import pytest
import requests
from sqlalchemy import select

from integration_signals.config import Settings, load_config
from integration_signals.store import models
from integration_signals.syncs.run import run_sync
from tests.fakes.salesforce import INSTANCE, FakeSalesforce, Fault
from tests.syncs.conftest import FAST_CONFIG, NOW, SF_TOKEN, salesforce_rows, seed_scores

SCORE = "Integration_Health_Score__c"
BAND = "Integration_Health_Band__c"


def run(cli, env, *args: str) -> dict:
    result = cli("sync", "salesforce", "--json", *args, env=env)
    data = json.loads(result.stdout)
    data["_exit"] = result.exit_code
    data["_stderr"] = result.stderr
    return data


def assert_crm_equals_computed(fake: FakeSalesforce, rows: list[dict]) -> None:
    for r in rows:
        account = fake.accounts[r["salesforce_id"]]
        assert account[SCORE] == r["score"], r["account_id"]
        assert account[BAND] == r["band"], r["account_id"]


@pytest.mark.parametrize("n", [1, 200, 399], ids=["one", "exactly-200", "399"])
def test_collections_cost_ceil_n_over_200_calls_and_unchanged_cost_none(
    cli, engine, salesforce, salesforce_env, n
):
    rows = salesforce_rows(n, salesforce)
    seed_scores(engine, rows)
    data = run(cli, salesforce_env)
    assert data["_exit"] == 0 and (data["written"], data["failed"]) == (n, 0)
    assert salesforce.collection_calls() == data["write_calls"] == math.ceil(n / 200)
    assert salesforce.bulk_jobs_created() == 0
    body = salesforce.requests("PATCH", "composite/sobjects")[0].body
    assert body["allOrNone"] is False and body["records"][0]["attributes"] == {"type": "Account"}
    assert isinstance(body["records"][0][SCORE], int)
    assert isinstance(body["records"][0]["Expansion_Ready__c"], bool)
    assert_crm_equals_computed(salesforce, rows)
    assert data["usage"]["api_usage"] == data["api_calls"]  # read from Sforce-Limit-Info

    before = len(salesforce.log)
    again = run(cli, salesforce_env)
    assert (again["planned"], again["unchanged"], again["api_calls"]) == (0, n, 0)
    assert len(salesforce.log) == before


def test_above_the_threshold_one_bulk_job_writes_everything(
    cli, engine, salesforce, salesforce_env
):
    rows = salesforce_rows(450, salesforce)  # the test config's bulk_threshold is 400
    seed_scores(engine, rows)
    salesforce.refuse[rows[7]["salesforce_id"]] = (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "Score cannot change during renewal",
    )
    data = run(cli, salesforce_env)
    assert data["_exit"] == 0 and (data["written"], data["failed"]) == (449, 1)
    assert salesforce.bulk_jobs_created() == 1 and salesforce.collection_calls() == 0
    assert (
        data["write_calls"] == 1 and len(salesforce.requests("PUT", r"jobs/ingest/.*/batches")) == 1
    )
    assert salesforce.requests("PATCH", r"jobs/ingest/[^/]+")[0].body == {"state": "UploadComplete"}
    assert data["failures"] == [
        {
            "account_id": rows[7]["account_id"],
            "record_id": rows[7]["salesforce_id"],
            "error": "FIELD_CUSTOM_VALIDATION_EXCEPTION:Score cannot change during renewal",
        }
    ]
    assert_crm_equals_computed(salesforce, rows[:7] + rows[8:])

    del salesforce.refuse[rows[7]["salesforce_id"]]
    retry = run(cli, salesforce_env)  # the refused record is retried, through Collections
    assert (retry["planned"], retry["written"], retry["write_calls"]) == (1, 1, 1)
    assert_crm_equals_computed(salesforce, rows)
    assert all(count == 1 for count in salesforce.writes.values())


def test_a_rejected_record_does_not_block_its_collection_and_is_retried_next_run(
    cli, engine, salesforce, salesforce_env
):
    rows = salesforce_rows(5, salesforce)
    seed_scores(engine, rows)
    rows[2]["reason"] = "x"
    salesforce.refuse[rows[2]["salesforce_id"]] = (
        "UNABLE_TO_LOCK_ROW",
        "unable to obtain exclusive access to this record",
    )
    data = run(cli, salesforce_env)
    assert (data["written"], data["failed"], data["write_calls"]) == (4, 1, 1)
    assert data["failures"][0]["account_id"] == "acct-00002"
    assert data["failures"][0]["error"].startswith("UNABLE_TO_LOCK_ROW: unable to obtain")
    del salesforce.refuse[rows[2]["salesforce_id"]]
    again = run(cli, salesforce_env)
    assert (again["planned"], again["written"]) == (1, 1)
    assert_crm_equals_computed(salesforce, rows)


def test_missing_fields_are_named_before_anything_is_written(
    cli, engine, salesforce, salesforce_env
):
    del salesforce.fields["Integration_Segments__c"]
    del salesforce.fields["Expansion_Ready__c"]
    seed_scores(engine, salesforce_rows(3, salesforce))
    data = run(cli, salesforce_env)
    assert data["_exit"] == 1 and data["written"] == 0
    assert data["missing_fields"] == ["Expansion_Ready__c", "Integration_Segments__c"]
    assert "sf project deploy start --source-dir force-app" in data["error"]
    assert salesforce.collection_calls() == 0
    assert "Expansion_Ready__c, Integration_Segments__c" in data["_stderr"]


def test_an_expired_session_logs_in_again_once_with_username_and_password(
    cli, engine, salesforce, salesforce_env
):
    rows = salesforce_rows(450, salesforce)
    seed_scores(engine, rows[:300])
    env = {
        "SALESFORCE_USERNAME": "sync@acme.example",
        "SALESFORCE_PASSWORD": salesforce.password,
        "SALESFORCE_SECURITY_TOKEN": "tok3n",
        "SIGNALS_CONFIG": salesforce_env["SIGNALS_CONFIG"],
    }
    salesforce.expire_before("PATCH", "composite/sobjects", nth=2)  # a session timeout mid-run
    data = run(cli, env)
    assert data["_exit"] == 0 and data["written"] == 300
    assert salesforce.logins == 2  # the run's login and one re-login after the 401
    assert data["usage"]["relogins"] == 1
    assert [r.status for r in salesforce.requests("PATCH", "composite/sobjects")] == [200, 401, 200]
    assert_crm_equals_computed(salesforce, rows[:300])
    assert all(count == 1 for count in salesforce.writes.values())


def test_an_expired_access_token_fails_clearly_and_keeps_confirmed_batches(
    cli, engine, salesforce, salesforce_env, caplog
):
    caplog.set_level(logging.DEBUG)
    rows = salesforce_rows(300, salesforce)
    seed_scores(engine, rows)
    salesforce.expire_before("PATCH", "composite/sobjects", nth=2)
    data = run(cli, salesforce_env)
    assert data["_exit"] == 1 and data["status"] == "failed"
    assert data["written"] == 200
    assert "SALESFORCE_ACCESS_TOKEN" in data["error"] and "INVALID_SESSION_ID" in data["error"]
    history = cli("sync", "history", "--json").stdout
    with engine.connect() as conn:
        runs = conn.execute(select(models.SyncRun.__table__)).all()
    everything = caplog.text + json.dumps(data) + history + repr(runs)
    assert SF_TOKEN not in everything and SF_TOKEN.split("!")[1] not in everything


@pytest.mark.parametrize(
    "fault",
    [
        Fault(
            "PATCH",
            "composite/sobjects",
            status=503,
            body="Service Unavailable",
            headers={"Retry-After": "0"},
        ),
        Fault(
            "PATCH",
            "composite/sobjects",
            status=500,
            body=[{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}],
        ),
        Fault(
            "PATCH",
            "composite/sobjects",
            status=403,
            body=[
                {
                    "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                }
            ],
        ),
        Fault("PATCH", "composite/sobjects", error=requests.exceptions.ReadTimeout),
        Fault("PATCH", "composite/sobjects", error=requests.exceptions.ConnectionError),
        Fault("GET", "sobjects/Account/describe", status=503, body="Service Unavailable"),
    ],
    ids=[
        "503-retry-after",
        "500",
        "concurrent-limit",
        "timeout",
        "connection-reset",
        "describe-503",
    ],
)
def test_transient_faults_are_retried_and_the_final_state_is_computed(
    cli, engine, salesforce, salesforce_env, fault
):
    rows = salesforce_rows(250, salesforce)
    seed_scores(engine, rows)
    fault.times = 2
    salesforce.faults.append(fault)
    data = run(cli, salesforce_env)
    assert data["_exit"] == 0 and (data["written"], data["failed"]) == (250, 0)
    assert_crm_equals_computed(salesforce, rows)
    assert all(count == 1 for count in salesforce.writes.values())


def test_the_daily_request_limit_stops_the_run_and_says_when_to_resume(
    cli, engine, salesforce, salesforce_env
):
    rows = salesforce_rows(300, salesforce)
    seed_scores(engine, rows)
    salesforce.api_limit = 2  # describe and one Collections call
    data = run(cli, salesforce_env)
    assert data["_exit"] == 1 and data["status"] == "stopped" and data["written"] == 200
    assert "24-hour API request allowance" in data["error"] and data["resume_after"]
    salesforce.api_limit = 15000
    rest = run(cli, salesforce_env)
    assert (rest["planned"], rest["written"]) == (100, 100)
    assert_crm_equals_computed(salesforce, rows)


def test_matching_by_website_normalises_raw_values_and_escapes_soql(
    cli, engine, salesforce, salesforce_env
):
    acme = salesforce.add_account(Website="https://www.ACME.com/")
    salesforce.add_account(Website="notacme.com")
    salesforce.add_account(Website="beta.io")
    salesforce.add_account(Website="http://beta.io/about")
    evil = "o'neil.example"
    oneil = salesforce.add_account(Website="www.O'Neil.example")
    seed_scores(
        engine,
        [
            {"account_id": "acme", "domain": "acme.com"},
            {"account_id": "beta", "domain": "beta.io"},
            {"account_id": "oneil", "domain": evil},
            {"account_id": "inject", "domain": "x.com' OR Name LIKE '%"},
        ],
    )
    data = run(cli, salesforce_env)
    assert data["_exit"] == 0 and data["written"] == 2
    assert salesforce.accounts[acme][SCORE] == 80 and salesforce.accounts[oneil][SCORE] == 80
    reasons = {u["account_id"]: u["reason"] for u in data["unmatched_accounts"]}
    assert reasons["beta"].startswith("2 Salesforce records have domain beta.io")
    assert reasons["inject"].startswith("no Salesforce record has domain")
    query = salesforce.requests("GET", r"query/?")[0]
    assert query.status == 200


def test_matches_are_remembered_so_the_next_run_queries_nothing(
    cli, engine, salesforce, salesforce_env
):
    record = salesforce.add_account(Website="acme.com")
    seed_scores(engine, [{"account_id": "acme", "domain": "acme.com"}])
    assert run(cli, salesforce_env)["written"] == 1
    seed_scores(engine, [{"account_id": "acme", "domain": "acme.com", "score": 90}])
    queries = len(salesforce.requests("GET", r"query/?"))
    data = run(cli, salesforce_env)
    assert data["written"] == 1 and salesforce.accounts[record][SCORE] == 90
    assert len(salesforce.requests("GET", r"query/?")) == queries


def add_task(
    engine, task_id: int, account_id: str, *, status: str = "open", kind: str = "health_degradation"
):
    with engine.begin() as conn:
        conn.execute(
            models.Task.__table__.insert().values(
                id=task_id,
                account_id=account_id,
                signal_kind=kind,
                title=f"Fix Zendesk sync for {account_id}",
                body="7-day success 78% (22 of 100 failed).",
                status=status,
                due_at=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
        )


def test_playbook_tasks_become_salesforce_tasks_once_and_follow_their_status(
    cli, engine, salesforce, salesforce_env, tmp_path
):
    config = tmp_path / "tasks.toml"
    config.write_text(
        FAST_CONFIG.replace("bulk_threshold = 400", "bulk_threshold = 400\nplaybook_tasks = true")
    )
    env = {**salesforce_env, "SIGNALS_CONFIG": str(config)}
    rows = salesforce_rows(2, salesforce)
    seed_scores(engine, rows)
    add_task(engine, 1, "acct-00000")
    add_task(engine, 2, "acct-00001", kind="integration_activated")
    add_task(engine, 3, "acct-00001", status="done")  # done before it was ever written
    data = run(cli, env)
    assert data["_exit"] == 0 and data["tasks"] == {
        "planned": 2,
        "written": 2,
        "failed": 0,
        "unchanged": 0,
    }
    task = salesforce.tasks["1"]
    assert task["WhatId"] == rows[0]["salesforce_id"] and task["Status"] == "Not Started"
    assert task["Priority"] == "High" and task["ActivityDate"] == "2026-11-20"
    assert "3" not in salesforce.tasks

    assert run(cli, env)["tasks"]["planned"] == 0  # nothing changed: nothing sent
    with engine.begin() as conn:
        conn.execute(
            models.Task.__table__.update()
            .where(models.Task.__table__.c.id == 1)
            .values(status="done")
        )
    again = run(cli, env)
    assert again["tasks"]["written"] == 1 and salesforce.tasks["1"]["Status"] == "Completed"
    assert (
        len(salesforce.tasks) == 2 and salesforce.task_writes["1"] == 2
    )  # updated, not duplicated


def test_playbook_tasks_need_the_shipped_task_field(
    cli, engine, salesforce, salesforce_env, tmp_path
):
    config = tmp_path / "tasks.toml"
    config.write_text(
        FAST_CONFIG.replace("bulk_threshold = 400", "bulk_threshold = 400\nplaybook_tasks = true")
    )
    salesforce.task_field = False
    seed_scores(engine, salesforce_rows(1, salesforce))
    add_task(engine, 1, "acct-00000")
    data = run(cli, {**salesforce_env, "SIGNALS_CONFIG": str(config)})
    assert data["_exit"] == 1 and data["written"] == 1  # the fields landed first
    assert data["missing_fields"] == ["Integration_Signals_Task_Id__c"]
    assert "force-app" in data["error"]


def test_a_run_interrupted_during_a_bulk_job_is_finished_from_the_jobs_results(
    engine, salesforce, config_path
):
    """Killed (here: Ctrl-C) while polling a Bulk job Salesforce goes on to finish: the
    next run reads the job's successful results into the ledger instead of sending the
    same 450 records again."""
    rows = salesforce_rows(450, salesforce)
    seed_scores(engine, rows)
    salesforce.faults.append(Fault("GET", r"jobs/ingest/[^/]+", error=KeyboardInterrupt))
    config = load_config(config_path)
    settings = Settings(
        salesforce_instance_url=f"https://{INSTANCE}", salesforce_access_token=SF_TOKEN
    )
    with pytest.raises(KeyboardInterrupt):
        run_sync(engine, config, settings, "salesforce", now=NOW)
    assert sum(salesforce.writes.values()) == 450  # Salesforce processed the job
    with engine.connect() as conn:
        status = conn.execute(select(models.SyncRun.status)).scalar_one()
    assert status == "interrupted"

    report = run_sync(engine, config, settings, "salesforce", now=NOW)
    assert report.status == "ok" and report.resumed == 450
    assert (report.planned, report.written, report.unchanged) == (0, 0, 450)
    assert salesforce.bulk_jobs_created() == 1 and set(salesforce.writes.values()) == {1}
    assert_crm_equals_computed(salesforce, rows)
