"""HubSpot end to end through `signals sync hubspot` against a fake HubSpot on
127.0.0.1: batching, matching, rejections, rate limits, faults, dry run, provisioning."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
from sqlalchemy import select

from integration_signals.config import load_config
from integration_signals.store import models
from tests.fakes.hubspot import (
    BATCH_UPDATE,
    PROPERTIES,
    SEARCH,
    FakeHubSpot,
    Fault,
    _validation_error,
)
from tests.syncs.conftest import FAST_CONFIG, NOW, TOKEN, hubspot_rows, seed_scores


def run(cli, env, *args: str) -> dict:
    result = cli("sync", "hubspot", "--json", *args, env=env)
    data = json.loads(result.stdout)
    data["_exit"] = result.exit_code
    data["_stderr"] = result.stderr
    return data


def seed(engine, fake: FakeHubSpot, n: int, **extra) -> list[dict]:
    rows = hubspot_rows(n, **extra)
    for r in rows:
        if r["hubspot_id"] not in fake.companies:
            fake.add_company(r["hubspot_id"], name=r["account_id"])
    seed_scores(engine, rows)
    return rows


def hubspot_fields() -> list[str]:
    return list(load_config().syncs.hubspot.fields.values())


def assert_crm_equals_computed(fake: FakeHubSpot, rows: list[dict]) -> None:
    for r in rows:
        company = fake.companies[r["hubspot_id"]]
        assert company["integration_health_score"] == str(r["score"]), r["account_id"]
        assert company["integration_health_band"] == r["band"], r["account_id"]


@pytest.mark.parametrize("n", [1, 100, 250], ids=["one", "exactly-100", "250"])
def test_changed_records_cost_ceil_n_over_100_calls_and_unchanged_cost_none(
    cli, engine, hubspot, hubspot_env, n
):
    rows = seed(engine, hubspot, n)
    first = run(cli, hubspot_env)
    assert first["_exit"] == 0
    assert (first["planned"], first["written"], first["failed"]) == (n, n, 0)
    assert hubspot.batch_calls() == first["write_calls"] == math.ceil(n / 100)
    assert first["api_calls"] == math.ceil(n / 100)  # not one request more
    assert max(len(r.body["inputs"]) for r in hubspot.requests(BATCH_UPDATE)) <= 100
    assert_crm_equals_computed(hubspot, rows)

    calls_before = len(hubspot.log)
    again = run(cli, hubspot_env)
    assert (again["planned"], again["unchanged"], again["api_calls"]) == (0, n, 0)
    assert len(hubspot.log) == calls_before  # not a single request

    seed_scores(engine, [dict(rows[0], score=3, band="at_risk")])
    one = run(cli, hubspot_env, "--force")  # one record of one is over the band guard
    assert (one["planned"], one["written"], one["write_calls"]) == (1, 1, 1)
    sent = hubspot.requests(BATCH_UPDATE)[-1].body["inputs"]
    assert sent == [
        {
            "id": rows[0]["hubspot_id"],
            "properties": {"integration_health_score": "3", "integration_health_band": "at_risk"},
        }
    ]  # only the fields that changed


def test_matching_by_domain_normalises_crm_values_and_reports_ambiguity(
    cli, engine, hubspot, hubspot_env
):
    hubspot.add_company("501", domain="https://www.Acme.com/")
    hubspot.add_company("502", domain="notacme.com")
    hubspot.add_company("601", domain="beta.io")
    hubspot.add_company("602", domain="WWW.BETA.IO")
    seed_scores(
        engine,
        [
            {"account_id": "acme", "domain": "acme.com"},
            {"account_id": "beta", "domain": "https://beta.io"},
            {"account_id": "gamma", "domain": "gamma.dev"},
            {"account_id": "nodomain"},
        ],
    )
    data = run(cli, hubspot_env)
    assert data["_exit"] == 0  # unmatched accounts are a result, not a failure
    assert data["written"] == 1 and hubspot.companies["501"]["integration_health_score"] == "80"
    reasons = {u["account_id"]: u["reason"] for u in data["unmatched_accounts"]}
    assert data["unmatched"] == 3
    assert "2 HubSpot records have domain beta.io (601, 602)" in reasons["beta"]
    assert reasons["gamma"] == "no HubSpot record has domain gamma.dev"
    assert reasons["nodomain"] == "no hubspot_id and no domain to match on"
    searches = len(hubspot.requests(SEARCH))

    # The match is remembered: the next run does not search for acme again.
    seed_scores(
        engine, [{"account_id": "acme", "domain": "acme.com", "score": 60, "band": "watch"}]
    )
    again = run(cli, hubspot_env, "--force")
    assert again["written"] == 1 and hubspot.companies["501"]["integration_health_band"] == "watch"
    assert len(hubspot.requests(SEARCH)) - searches == 1  # only beta/gamma are searched again
    assert not any("acme" in json.dumps(r.body) for r in hubspot.requests(SEARCH)[searches:])


def test_a_rejected_record_does_not_block_its_batch_and_is_retried_until_it_lands(
    cli, engine, hubspot, hubspot_env
):
    rows = seed(engine, hubspot, 5)
    hubspot.refuse["10002"] = "Company is locked by a workflow"
    first = run(cli, hubspot_env)
    assert first["_exit"] == 0
    assert (first["written"], first["failed"]) == (4, 1)
    assert first["failures"] == [
        {
            "account_id": "acct-00002",
            "record_id": "10002",
            "error": "VALIDATION_ERROR: Company is locked by a workflow",
        }
    ]
    assert hubspot.batch_calls() == 1

    still = run(cli, hubspot_env)  # retried on the next run; still refused
    assert (still["planned"], still["failed"]) == (1, 1)
    del hubspot.refuse["10002"]
    last = run(cli, hubspot_env)
    assert (last["planned"], last["written"], last["failed"]) == (1, 1, 0)
    assert_crm_equals_computed(hubspot, rows)
    assert all(count == 1 for count in hubspot.writes.values())


def test_an_invalid_value_that_fails_the_whole_request_fails_only_its_record(
    cli, engine, hubspot, hubspot_env
):
    rows = seed(engine, hubspot, 8)
    rows[5]["band"] = "watch"
    seed_scores(engine, rows)
    for i, r in enumerate(rows):
        if i != 5:
            r["band"] = "healthy"
    seed_scores(engine, rows)
    band = hubspot.properties["integration_health_band"]
    band["options"] = [o for o in band["options"] if o["value"] != "watch"]  # an admin edit
    data = run(cli, hubspot_env)
    assert (data["written"], data["failed"]) == (7, 1)
    assert data["failures"][0]["record_id"] == "10005"
    assert (
        "INVALID_OPTION" in data["failures"][0]["error"] or "watch" in data["failures"][0]["error"]
    )
    assert "integration_health_band" not in hubspot.companies["10005"]


@pytest.mark.parametrize(
    ("headers", "min_wait"),
    [
        ({"Retry-After": "1"}, 1.0),
        ({"X-HubSpot-RateLimit-Interval-Milliseconds": "600"}, 0.6),
        ({}, 0.8),  # no hint at all: wait out our own rate window (0.8 s here)
    ],
    ids=["retry-after", "rate-headers-only", "nothing"],
)
def test_429_backs_off_honouring_retry_after_or_rate_headers(
    cli, engine, hubspot, hubspot_env, headers, min_wait, tmp_path: Path
):
    config = tmp_path / "window.toml"
    config.write_text(FAST_CONFIG.replace("window_seconds = 10.0", "window_seconds = 0.8"))
    hubspot_env = {**hubspot_env, "SIGNALS_CONFIG": str(config)}
    rows = seed(engine, hubspot, 150)
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "policyName": "TEN_SECONDLY_ROLLING",
    }
    hubspot.faults.append(Fault(BATCH_UPDATE, status=429, body=body, headers=headers, times=1))
    data = run(cli, hubspot_env)
    assert data["_exit"] == 0 and (data["written"], data["failed"]) == (150, 0)
    batches = hubspot.requests(BATCH_UPDATE)
    assert sorted(r.status for r in batches) == [200, 200, 429]
    refused = next(r for r in batches if r.status == 429)
    retried = next(r for r in batches if r.status == 200 and r.body == refused.body)
    assert retried.at - refused.at >= min_wait
    assert data["usage"]["rate_limited_429"] == 1
    assert_crm_equals_computed(hubspot, rows)


def test_server_errors_and_timeouts_are_retried_and_the_final_state_is_computed(
    cli, engine, hubspot, hubspot_env, tmp_path: Path
):
    config = tmp_path / "timeout.toml"
    config.write_text(
        FAST_CONFIG.replace("request_timeout_seconds = 2.0", "request_timeout_seconds = 0.3")
    )
    rows = seed(engine, hubspot, 300)
    hubspot.faults += [
        Fault(
            BATCH_UPDATE,
            status=500,
            body={"status": "error", "message": "internal", "category": "INTERNAL_ERROR"},
        ),
        Fault(
            BATCH_UPDATE,
            status=503,
            body={"status": "error", "message": "unavailable"},
            headers={"Retry-After": "0"},
        ),
        Fault(BATCH_UPDATE, hang=0.6),
    ]
    data = run(cli, {**hubspot_env, "SIGNALS_CONFIG": str(config)})
    assert data["_exit"] == 0 and (data["written"], data["failed"]) == (300, 0)
    assert sorted(r.status for r in hubspot.requests(BATCH_UPDATE)) == [0, 200, 200, 200, 500, 503]
    assert_crm_equals_computed(hubspot, rows)
    assert all(count == 1 for count in hubspot.writes.values())


def test_when_retries_run_out_the_run_fails_and_keeps_what_was_confirmed(
    cli, engine, hubspot, hubspot_env
):
    rows = seed(engine, hubspot, 300)
    unavailable = {"status": "error", "message": "Service unavailable"}
    hubspot.faults.append(Fault(BATCH_UPDATE, status=503, body=unavailable, times=100, after=1))
    data = run(cli, hubspot_env)
    assert data["_exit"] == 1 and data["status"] == "failed"
    assert data["written"] == 100  # the first batch to arrive landed and is in the ledger
    assert "503" in data["error"] and "sync hubspot failed" in data["_stderr"]
    hubspot.faults.clear()  # the outage is over
    rest = run(cli, hubspot_env)
    assert (rest["planned"], rest["written"]) == (200, 200)
    assert_crm_equals_computed(hubspot, rows)
    assert all(count == 1 for count in hubspot.writes.values())


def test_the_daily_limit_stops_the_run_cleanly_and_says_when_to_resume(
    cli, engine, hubspot, hubspot_env
):
    rows = seed(engine, hubspot, 400)
    hubspot.daily_limit = 2  # two batches today
    data = run(cli, hubspot_env)
    assert data["_exit"] == 1 and data["status"] == "stopped"
    assert data["written"] == len(hubspot.writes) == 200
    assert "midnight" in data["resume_after"]
    assert "daily API limit" in data["error"]
    hubspot.daily_limit = 1000  # the next day
    rest = run(cli, hubspot_env)
    assert rest["planned"] == rest["written"] == 200
    assert_crm_equals_computed(hubspot, rows)
    assert all(count == 1 for count in hubspot.writes.values())


def test_missing_properties_are_named_and_provision_creates_them_idempotently(
    cli, engine, hubspot, hubspot_env
):
    for name in list(hubspot.properties):
        if name not in ("name", "domain"):
            del hubspot.properties[name]
    hubspot.groups.clear()
    rows = seed(engine, hubspot, 3)
    data = run(cli, hubspot_env)
    assert data["_exit"] == 1 and data["written"] == 0
    assert data["missing_fields"] == sorted(hubspot_fields())  # all seven, named
    assert "signals provision hubspot" in data["error"]
    assert hubspot.batch_calls() == 1 and not hubspot.writes  # refused whole, nothing written

    made = cli("provision", "hubspot", "--json", env=hubspot_env)
    assert made.exit_code == 0
    report = json.loads(made.stdout)
    assert report["group_created"] is True and len(report["created"]) == 7
    assert hubspot.properties["integration_health_band"]["groupName"] == "integration_signals"
    again = json.loads(cli("provision", "hubspot", "--json", env=hubspot_env).stdout)
    assert (
        again["group_created"] is False and again["created"] == [] and len(again["existing"]) == 7
    )

    data = run(cli, hubspot_env)
    assert data["_exit"] == 0 and data["written"] == 3
    assert_crm_equals_computed(hubspot, rows)


def test_property_doesnt_exist_from_the_write_itself_names_the_property(
    cli, engine, hubspot, hubspot_env
):
    seed(engine, hubspot, 2)
    # Deleted by an admin between our properties check and the write.
    body = _validation_error(
        "integration_health_reason",
        "PROPERTY_DOESNT_EXIST",
        'Property "integration_health_reason" does not exist',
    )
    hubspot.faults.append(Fault(BATCH_UPDATE, status=400, body=body))
    data = run(cli, hubspot_env)
    assert data["_exit"] == 1 and data["written"] == 0
    assert data["missing_fields"] == ["integration_health_reason"]
    assert "run `signals provision hubspot`" in data["error"]
    assert hubspot.batch_calls() == 1  # not split record by record: it is not one record's fault
    assert len(hubspot.requests(PROPERTIES, "GET")) == 1  # then one look for any other


def test_a_renamed_property_missing_in_hubspot_is_named(
    cli, engine, hubspot, hubspot_env, tmp_path: Path
):
    config = tmp_path / "renamed.toml"
    config.write_text(FAST_CONFIG + '\n[syncs.hubspot.fields]\nreason = "health_reason_v2"\n')
    seed(engine, hubspot, 2)
    data = run(cli, {**hubspot_env, "SIGNALS_CONFIG": str(config)})
    assert data["_exit"] == 1 and data["missing_fields"] == ["health_reason_v2"]
    assert not hubspot.writes


def test_dry_run_shows_each_change_and_writes_nothing_anywhere(cli, engine, hubspot, hubspot_env):
    rows = seed(engine, hubspot, 3)
    assert run(cli, hubspot_env)["written"] == 3
    seed_scores(engine, [dict(rows[1], score=42, band="at_risk")])
    hubspot.add_company("777", domain="www.newco.io")
    seed_scores(engine, [{"account_id": "newco", "domain": "newco.io", "score": 90}])
    before = {k: dict(v) for k, v in hubspot.companies.items()}
    with engine.connect() as conn:
        ledger_before = conn.execute(select(models.SyncLedger.__table__)).all()
    calls_before = len(hubspot.requests(BATCH_UPDATE))

    data = run(cli, hubspot_env, "--dry-run")
    assert data["_exit"] == 0 and data["dry_run"] is True and data["planned"] == 2
    change = next(c for c in data["changes"] if c["record_id"] == "10001")
    assert change["fields"]["integration_health_score"] == {"old": "51", "new": "42"}
    assert change["fields"]["integration_health_band"] == {"old": "watch", "new": "at_risk"}
    newco = next(c for c in data["changes"] if c["record_id"] == "777")
    assert newco["fields"]["integration_health_score"] == {"old": None, "new": "90"}
    assert hubspot.companies == before
    assert len(hubspot.requests(BATCH_UPDATE)) == calls_before
    with engine.connect() as conn:
        assert conn.execute(select(models.SyncLedger.__table__)).all() == ledger_before
        assert conn.execute(select(models.SyncMatch.__table__)).all() == []

    human = cli("sync", "hubspot", "--dry-run", env=hubspot_env)
    assert "integration_health_score: 51 -> 42" in human.stdout


def test_the_client_side_limiter_provokes_no_429s(cli, engine, tmp_path: Path):
    fake = FakeHubSpot(token=TOKEN, window_limit=10, window_seconds=1.0)
    fake.start()
    try:
        config = tmp_path / "tight.toml"
        config.write_text(
            FAST_CONFIG.replace("requests_per_window = 100", "requests_per_window = 10").replace(
                "window_seconds = 10.0", "window_seconds = 1.0"
            )
        )
        env = {
            "HUBSPOT_ACCESS_TOKEN": TOKEN,
            "HUBSPOT_API_URL": fake.url,
            "SIGNALS_CONFIG": str(config),
        }
        rows = seed(engine, fake, 2500)
        data = run(cli, env)
        assert data["_exit"] == 0 and data["written"] == 2500
        assert fake.rate_limited == 0 and data["usage"]["rate_limited_429"] == 0
        assert len(fake.log) == 25  # 25 batches, none refused
        assert_crm_equals_computed(fake, rows)
    finally:
        fake.stop()


def test_the_token_never_appears_in_logs_errors_or_run_records(
    cli, engine, hubspot, hubspot_env, caplog
):
    caplog.set_level(logging.DEBUG)
    seed(engine, hubspot, 120)
    hubspot.faults.append(
        Fault(BATCH_UPDATE, status=503, body={"message": "x"}, headers={"Retry-After": "0"})
    )
    hubspot.token = "a-different-token"  # ours is now refused: 401
    data = run(cli, hubspot_env)
    assert data["_exit"] == 1 and "HUBSPOT_ACCESS_TOKEN" in data["error"]
    hubspot.token = TOKEN
    ok = run(cli, hubspot_env)
    assert ok["_exit"] == 0
    history = cli("sync", "history", "--json", env=hubspot_env).stdout
    with engine.connect() as conn:
        runs = conn.execute(select(models.SyncRun.__table__)).all()
    everything = (
        caplog.text + json.dumps(data) + json.dumps(ok) + history + repr(runs) + data["_stderr"]
    )
    assert TOKEN not in everything and TOKEN[-10:] not in everything


def test_no_writes_while_the_feed_is_stale(cli, engine, hubspot, hubspot_env):
    seed(engine, hubspot, 3)
    with engine.begin() as conn:
        conn.execute(
            models.Signal.__table__.insert().values(
                account_id="*", kind="feed_stale", subject="", status="open", fired_at=NOW
            )
        )
    data = run(cli, hubspot_env)
    assert data["_exit"] == 1 and data["status"] == "stopped" and "feed_stale" in data["error"]
    assert hubspot.batch_calls() == 0 and data["api_calls"] == 0
    dry = run(cli, hubspot_env, "--dry-run")
    assert dry["_exit"] == 0 and dry["planned"] == 3 and "stale" in dry["blocked"]


def test_the_band_guard_stops_a_mass_band_change_unless_forced(cli, engine, hubspot, hubspot_env):
    rows = seed(engine, hubspot, 10)
    assert run(cli, hubspot_env)["written"] == 10  # the first sync is exempt
    flipped = [dict(r, band="at_risk", score=10) for r in rows[:3]]
    seed_scores(engine, flipped)
    calls = hubspot.batch_calls()
    stopped = run(cli, hubspot_env)
    assert stopped["_exit"] == 1 and stopped["status"] == "stopped"
    assert "3 of 10 records (30%) would change band" in stopped["error"]
    assert hubspot.batch_calls() == calls
    forced = run(cli, hubspot_env, "--force")
    assert forced["_exit"] == 0 and forced["written"] == 3
    assert_crm_equals_computed(hubspot, flipped)


def test_full_ignores_the_ledger_and_rewrites_every_matched_record(
    cli, engine, hubspot, hubspot_env
):
    rows = seed(engine, hubspot, 150)
    assert run(cli, hubspot_env)["written"] == 150
    hubspot.companies["10003"]["integration_health_score"] = "0"  # someone edited it by hand
    assert run(cli, hubspot_env)["planned"] == 0  # the ledger does not know
    full = run(cli, hubspot_env, "--full")
    assert (full["planned"], full["written"], full["write_calls"]) == (150, 150, 2)
    assert_crm_equals_computed(hubspot, rows)
