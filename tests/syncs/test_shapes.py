"""Third-party answers of an unexpected shape fail only the records they belong to:
the CRM's answer readers (``syncs/<crm>/shapes.py``) never raise, and a run whose
batch is answered oddly goes on, records each failure and holds the record back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine

from integration_signals.store import failures
from integration_signals.syncs.contract import RecordChange
from integration_signals.syncs.hubspot.shapes import batch_results
from integration_signals.syncs.salesforce.shapes import record_error, save_results
from tests.fakes.hubspot import BATCH_UPDATE, FakeHubSpot, Fault
from tests.syncs.test_hubspot import run, seed

BATCH = [RecordChange(f"00{i}", (f"acct-{i}",), {"Score__c": (None, "50")}) for i in range(3)]
OK = {"id": "x", "success": True, "errors": []}


def _outcome(results: list) -> list[tuple[bool, str | None]]:
    return [(r.ok, r.error) for r in results]


SALESFORCE_ANSWERS: dict[str, tuple[Any, list[bool], str]] = {
    "an object instead of a list": ({"message": "hm"}, [False] * 3, "unexpected body (dict"),
    "fewer results than records": ([OK, OK], [False] * 3, "2 results for 3 records"),
    "html from a proxy": ("<html>502</html>", [False] * 3, "unexpected body (str"),
    "one result is not an object": ([OK, "??", OK], [True, False, True], "unexpected result"),
    "one result is null": ([OK, OK, None], [True, True, False], "unexpected result"),
    "success is a string": ([OK, {"success": "yes"}, OK], [True, False, True], "without a"),
    "errors is not a list": (
        [OK, {"success": False, "errors": "locked"}, OK],
        [True, False, True],
        "without a message",
    ),
    "an error that is a string": (
        [OK, OK, {"success": False, "errors": ["UNABLE_TO_LOCK_ROW"]}],
        [True, True, False],
        "ERROR: UNABLE_TO_LOCK_ROW",
    ),
    "fields is not a list": (
        [{"success": False, "errors": [{"statusCode": "X", "message": "m", "fields": 3}]}, OK, OK],
        [False, True, True],
        "X: m",
    ),
}


@pytest.mark.parametrize("case", list(SALESFORCE_ANSWERS), ids=list(SALESFORCE_ANSWERS))
def test_an_odd_salesforce_answer_fails_only_the_records_it_cannot_confirm(case: str):
    answer, oks, reason = SALESFORCE_ANSWERS[case]
    results = save_results(answer, BATCH, what="sObject Collections")
    assert [r.ok for r in results] == oks
    assert [r.record_id for r in results] == [c.record_id for c in BATCH]
    assert all(reason in (r.error or "") for r in results if not r.ok)


def test_salesforce_record_errors_keep_both_code_spellings():
    errors = [
        {"statusCode": "MALFORMED_ID", "message": "bad id", "fields": ["Id"]},
        {"errorCode": "INVALID_FIELD", "message": "no such column"},
    ]
    assert record_error(errors) == "MALFORMED_ID: bad id (Id); INVALID_FIELD: no such column"


HUBSPOT_ANSWERS: dict[str, tuple[Any, list[bool], str]] = {
    "not an object": (["?"], [False] * 3, "unexpected body (list)"),
    "results is not a list": ({"results": "all good"}, [False] * 3, "no result for it"),
    "a result without id": (
        {"results": [{"id": "000"}, {"properties": {}}, {"id": "002"}]},
        [True, False, True],
        "no result for it",
    ),
    "a result that is a string": (
        {"results": [{"id": "000"}, "001", {"id": "002"}]},
        [True, False, True],
        "no result for it",
    ),
    "errors of odd shapes": (
        {
            "results": [{"id": "000"}, {"id": "001"}, {"id": "002"}],
            "errors": [
                "boom",
                {"context": "001"},
                {"category": "C", "message": "m", "context": {"ids": "002"}},
            ],
        },
        [True, True, False],
        "C: m",
    ),
}


@pytest.mark.parametrize("case", list(HUBSPOT_ANSWERS), ids=list(HUBSPOT_ANSWERS))
def test_an_odd_hubspot_answer_fails_only_the_records_it_cannot_confirm(case: str):
    answer, oks, reason = HUBSPOT_ANSWERS[case]
    results = batch_results(answer, BATCH)
    assert [r.ok for r in results] == oks
    assert all(reason in (r.error or "") for r in results if not r.ok)


def test_a_batch_answered_oddly_fails_its_records_the_run_goes_on_and_they_are_recorded(
    cli, engine: Engine, hubspot: FakeHubSpot, hubspot_env
):
    seed(engine, hubspot, 3)
    odd = {"status": "COMPLETE", "results": [{"id": "10000"}, {"no": "id"}, "10002"]}
    hubspot.faults.append(Fault(BATCH_UPDATE, status=200, body=odd))
    first = run(cli, hubspot_env)
    assert first["_exit"] == 0, first["_stderr"]
    assert first["status"] == "ok" and (first["written"], first["failed"]) == (1, 2)
    assert {f["record_id"] for f in first["failures"]} == {"10001", "10002"}
    with engine.connect() as conn:
        rows = {r["item"]: r for r in failures.failing(conn, "sync.hubspot")}
    assert set(rows) == {"10001", "10002"} and all(r["failures"] == 1 for r in rows.values())
    again = run(cli, hubspot_env)  # by hand: every failed record is retried at once
    assert (again["planned"], again["written"], again["failed"]) == (2, 2, 0)
    with engine.connect() as conn:
        assert failures.failing(conn, "sync.hubspot") == []
    assert json.dumps(first).count("Traceback") == 0
