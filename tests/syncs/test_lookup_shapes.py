"""The CRM lookup paths read answers through the shapes modules: an odd answer to the
domain lookup (Salesforce query, HubSpot search) makes that lookup find nothing, so its
accounts are reported unmatched with the reason and the run goes on; an odd Bulk
results CSV fails only the records it cannot confirm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from integration_signals.syncs.contract import RecordChange
from integration_signals.syncs.salesforce.shapes import bulk_results
from tests.fakes.hubspot import Fault as HubSpotFault
from tests.fakes.salesforce import Fault as SalesforceFault
from tests.syncs.conftest import seed_scores
from tests.syncs.test_hubspot import run as run_hubspot
from tests.syncs.test_salesforce import run as run_salesforce


def _config(path: Path, line: str) -> None:
    text = path.read_text().replace("bulk_threshold = 400", "bulk_threshold = 400\n" + line)
    if line.startswith("bulk_threshold"):
        text = text.replace("bulk_threshold = 400\n", "", 1)
    path.write_text(text)


SF_QUERY: dict[str, tuple[Any, str]] = {
    "not an object": (["?"], "unexpected body (list)"),
    "records missing": ({"totalSize": 1, "done": True}, "unexpected body (NoneType)"),
    "records not a list": ({"done": True, "records": "x"}, "unexpected body (str)"),
    "a record that is a string": ({"done": True, "records": ["001"]}, "not an object (str)"),
    "a record without Id": (
        {"done": True, "records": [{"Website": "acme.com"}]},
        "a record without an Id",
    ),
    "Id is a number": (
        {"done": True, "records": [{"Id": 7, "Website": "acme.com"}]},
        "a record without an Id",
    ),
    "more pages without a url": (
        {"done": False, "records": [{"Id": "001X", "Website": "acme.com"}]},
        "no nextRecordsUrl",
    ),
}


@pytest.mark.parametrize("case", list(SF_QUERY), ids=list(SF_QUERY))
def test_an_odd_salesforce_query_answer_leaves_its_accounts_unmatched_with_the_reason(
    case: str, cli, engine, salesforce, salesforce_env, config_path
) -> None:
    body, reason = SF_QUERY[case]
    _config(config_path, "domain_query_chunk = 1")
    beta = salesforce.add_account(Website="beta.io")
    salesforce.add_account(Website="acme.com")
    seed_scores(
        engine,
        [
            {"account_id": "acme", "domain": "acme.com"},
            {"account_id": "beta", "domain": "beta.io"},
        ],
    )
    # the first query (acme.com comes first) is answered oddly, the second normally
    salesforce.faults.append(SalesforceFault("GET", r"query/?", status=200, body=body))
    data = run_salesforce(cli, salesforce_env)
    assert data["_exit"] == 0, data
    reasons = {u["account_id"]: u["reason"] for u in data["unmatched_accounts"]}
    assert "acme" in reasons and reason in reasons["acme"], reasons
    assert "could not be read" in reasons["acme"]
    assert "Traceback" not in data["_stderr"]
    if "beta" not in reasons:  # beta was in another query (or the same odd one)
        assert salesforce.accounts[beta]["Integration_Health_Score__c"] == 80


HS_SEARCH: dict[str, tuple[Any, str]] = {
    "results missing": ({"total": 1}, "unexpected body (NoneType)"),
    "results not a list": ({"results": {"id": "1"}}, "unexpected body (dict)"),
    "a result that is a string": ({"results": ["501"]}, "not an object (str)"),
    "a result without id": (
        {"results": [{"properties": {"domain": "acme.com"}}]},
        "a result without an id",
    ),
    "id is null": (
        {"results": [{"id": None, "properties": {"domain": "acme.com"}}]},
        "a result without an id",
    ),
}


@pytest.mark.parametrize("case", list(HS_SEARCH), ids=list(HS_SEARCH))
def test_an_odd_hubspot_search_answer_leaves_its_accounts_unmatched_with_the_reason(
    case: str, cli, engine, hubspot, hubspot_env
) -> None:
    body, reason = HS_SEARCH[case]
    hubspot.add_company("501", domain="acme.com")
    seed_scores(engine, [{"account_id": "acme", "domain": "acme.com"}])
    hubspot.faults.append(HubSpotFault("/crm/v3/objects/companies/search", status=200, body=body))
    data = run_hubspot(cli, hubspot_env)
    assert data["_exit"] == 0, data
    reasons = {u["account_id"]: u["reason"] for u in data["unmatched_accounts"]}
    assert reason in reasons["acme"] and "could not be read" in reasons["acme"], reasons
    # the next run asks again and matches
    data = run_hubspot(cli, hubspot_env)
    assert data["unmatched_accounts"] == [] and data["written"] == 1


CHANGES = [RecordChange(f"001B{i}", (f"acct-{i}",), {"Score__c": (None, "5")}) for i in range(3)]
OK_CSV = "sf__Id,sf__Created\n001B0,false\n001B1,false\n"
FAILED_CSV = "sf__Id,sf__Error\n001B2,UNABLE_TO_LOCK_ROW:locked:--\n"
BULK: dict[str, tuple[Any, Any, list[bool], str]] = {
    "normal": (OK_CSV, FAILED_CSV, [True, True, False], "UNABLE_TO_LOCK_ROW:locked"),
    "successes as json": ({"records": []}, "", [False, False, False], "dict, not CSV"),
    "failures as json": (OK_CSV, [1], [True, True, False], "list, not CSV"),
    "bytes": (OK_CSV.encode(), None, [True, True, False], "not processed"),
    "a row with extra cells": (
        "sf__Id,sf__Created\n001B0,false,extra,more\n",
        "sf__Id\n001B2\n",
        [True, False, False],
        "",
    ),
    "a row without an id": ("sf__Created\nfalse\n", "", [False, False, False], "not processed"),
    "nul in csv": ("sf__Id\n001B0\x00\n", "", [False, False, False], "not processed"),
}


@pytest.mark.parametrize("case", list(BULK), ids=list(BULK))
def test_odd_bulk_results_fail_only_the_records_they_cannot_confirm(case: str) -> None:
    ok_text, failed_text, oks, reason = BULK[case]
    results = bulk_results(ok_text, failed_text, CHANGES)
    assert [r.ok for r in results] == oks
    assert all(reason in (r.error or "") for r in results if not r.ok)


def test_an_odd_bulk_results_answer_fails_records_not_the_run(
    cli, engine, salesforce, salesforce_env, config_path
) -> None:
    _config(config_path, "bulk_threshold = 1")
    rows = []
    for i in range(3):
        rid = salesforce.add_account(f"001BULK{i:011d}", Name=f"A{i}")
        rows.append({"account_id": f"acct-{i}", "salesforce_id": rid})
    seed_scores(engine, rows)
    salesforce.faults.append(
        SalesforceFault("GET", r"jobs/ingest/[^/]+/successfulResults/?", status=200, body={"x": 1})
    )
    data = run_salesforce(cli, salesforce_env)
    assert salesforce.bulk_jobs_created() == 1
    assert data["_exit"] in (0, 1) and "Traceback" not in data["_stderr"], data
    assert data["failed"] == 3, data
    assert all("retried next run" in f["error"] for f in data["failures"]), data["failures"]
