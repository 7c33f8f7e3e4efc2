"""The view models behind the web pages (and the CLI's --json): the portfolio is
filtered, sorted and paginated in SQL; the integration, tasks, operations and sync
views say what the pages show. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select

from integration_signals.config import load_config
from integration_signals.scoring import views
from integration_signals.scoring.run import score_accounts
from integration_signals.scoring.signals import evaluate_signals
from integration_signals.store.accounts import import_account_objects
from integration_signals.store.feed import FEED_KEY
from integration_signals.store.jsonio import dumps
from integration_signals.store.models import (
    AccountScore,
    Connection,
    JobRun,
    KeyValue,
    ScoreHistory,
    Signal,
    SyncRun,
    Task,
)
from tests.scoring.builders import Feed, account, acme_like, import_accounts

CONFIG = load_config(None)
AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
N = 30
HOSTILE = "<script>alert(1)</script>"
PERCENT = "100% _real_ O'Brien"
SEGMENTS = ("smb", "mid_market", "enterprise")


def band_of(score: int) -> str:
    return "healthy" if score >= 75 else ("watch" if score >= 50 else "at_risk")


def _world(engine: Engine) -> dict[str, dict[str, Any]]:
    """N accounts with known scores, bands, segments, owners, history, connections
    and signals, plus an unscored one; returns the expected facts by account id."""
    rows, expect = [], {}
    for i in range(N):
        aid = f"a{i:02d}"
        name = {3: HOSTILE, 4: PERCENT}.get(i, f"Account {i:02d}")
        score = (i * 37) % 100
        segs = (["expansion-ready"] if i % 5 == 0 else []) + (
            ["at-risk"] if band_of(score) == "at_risk" else []
        )
        rows.append(
            {
                "account_id": aid,
                "name": name,
                "domain": f"{aid}.Example.com",
                "segment": SEGMENTS[i % 3],
                "plan": ("starter", "pro", "Enterprise")[i % 3],
                "mrr": 100.0 * (i + 1),
                "owner": "alex@example.com" if i % 2 else "sam@example.com",
                "csm": "dana@example.com" if i % 3 == 0 else None,
                "created_at": "2025-01-01T00:00:00Z",
            }
        )
        expect[aid] = {
            "name": name,
            "score": score,
            "band": band_of(score),
            "segments": segs,
            "segment": SEGMENTS[i % 3],
            "mrr": 100.0 * (i + 1),
            "owner": rows[-1]["owner"],
            "csm": rows[-1]["csm"],
            "plan": rows[-1]["plan"],
            "previous": score - (i % 7),  # 10 days ago
            "open_signals": 1 if i % 4 == 0 else 0,
            "zendesk": i % 3 == 0,
            "broken": i % 6 == 0,
        }
    rows.append({"account_id": "zz-unscored", "name": "Unscored Ltd", "segment": "smb"})
    import_account_objects(engine, rows, source="test", now=AS_OF)
    with engine.begin() as conn:
        for aid, e in expect.items():
            conn.execute(
                insert(AccountScore.__table__).values(
                    account_id=aid,
                    as_of=AS_OF,
                    scored_at=AS_OF,
                    score=e["score"],
                    band=e["band"],
                    stage="scored",
                    components={},
                    segments=e["segments"],
                    active_integrations=1 + int(e["zendesk"]),
                )
            )
            history = [
                (AS_OF - timedelta(days=45), e["score"] - 20),
                (AS_OF - timedelta(days=10), e["previous"]),
                (AS_OF, e["score"]),
            ]
            for at, value in history:
                conn.execute(
                    insert(ScoreHistory.__table__).values(
                        account_id=aid,
                        as_of=at,
                        scored_at=at,
                        score=value,
                        band=band_of(value),
                    )
                )
            conns = [("salesforce", "active")]
            if e["zendesk"]:
                conns.append(("zendesk", "broken" if e["broken"] else "idle"))
            for key, state in conns:
                conn.execute(
                    insert(Connection.__table__).values(
                        connection_id=f"{aid}-{key}",
                        account_id=aid,
                        integration=key,
                        state=state,
                        last_error="TIMEOUT" if state == "broken" else None,
                    )
                )
            if e["open_signals"]:
                conn.execute(
                    insert(Signal.__table__).values(
                        account_id=aid,
                        kind="health_degradation",
                        subject=f"{aid}-salesforce",
                        status="open",
                        fired_at=AS_OF - timedelta(days=1),
                    )
                )
            # A resolved episode never counts as open.
            conn.execute(
                insert(Signal.__table__).values(
                    account_id=aid,
                    kind="abandonment",
                    subject="",
                    status="resolved",
                    fired_at=AS_OF - timedelta(days=20),
                    resolved_at=AS_OF - timedelta(days=15),
                )
            )
    return expect


@pytest.fixture
def world(engine: Engine) -> dict[str, dict[str, Any]]:
    return _world(engine)


def _all(engine: Engine, **kw: Any) -> dict[str, Any]:
    return views.portfolio(engine, CONFIG, as_of=AS_OF, page_size=500, **kw)


def _ids(doc: dict[str, Any]) -> list[str]:
    return [r["account_id"] for r in doc["rows"]]


# ---------------------------------------------------------------- portfolio


def test_portfolio_pages_are_cut_in_sql_and_cover_every_account_once(engine, world):
    statements: list[str] = []

    def log(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", log)
    try:
        first = views.portfolio(engine, CONFIG, as_of=AS_OF, page_size=10)
    finally:
        event.remove(engine, "before_cursor_execute", log)
    assert first["total"] == N + 1
    assert first["pages"] == 4
    assert len(first["rows"]) == 10
    assert any("LIMIT" in s.upper() and "OFFSET" in s.upper() for s in statements)
    seen: list[str] = []
    for page in range(1, 5):
        doc = views.portfolio(engine, CONFIG, as_of=AS_OF, page=page, page_size=10)
        assert doc["page"] == page and doc["total"] == N + 1
        seen += _ids(doc)
    assert _ids(first) != seen[10:20]
    assert len(seen) == len(set(seen)) == N + 1
    assert set(seen) == set(world) | {"zz-unscored"}
    beyond = views.portfolio(engine, CONFIG, as_of=AS_OF, page=9, page_size=10)
    assert beyond["rows"] == [] and beyond["total"] == N + 1


def test_default_order_is_worst_score_first_with_unscored_last(engine, world):
    ids = _ids(_all(engine))
    scores = [world[a]["score"] for a in ids[:-1]]
    assert scores == sorted(scores)
    assert ids[-1] == "zz-unscored"


def _sort_key(sort: str, row: dict[str, Any]) -> Any:
    value = {"change": row["change_7d"]}.get(sort, row.get(sort))
    if sort == "band":
        value = None if value is None else views.BANDS.index(value)
    if isinstance(value, str):
        value = value.lower()
    return value


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", views.SORTS)
def test_every_column_sorts_both_ways_with_empty_values_last(engine, world, sort, order):
    rows = _all(engine, sort=sort, order=order)["rows"]
    assert len(rows) == N + 1
    keys = [_sort_key(sort, r) for r in rows]
    present = [k for k in keys if k is not None]
    assert keys[: len(present)] == present, "empty values sort last"
    assert present == sorted(present, reverse=order == "desc")
    # Ties are broken by account id, so pages never overlap or skip.
    for a, b in zip(rows, rows[1:], strict=False):
        if _sort_key(sort, a) == _sort_key(sort, b):
            assert a["account_id"] < b["account_id"]


def test_row_carries_change_since_last_week_trend_and_open_signals(engine, world):
    rows = {r["account_id"]: r for r in _all(engine)["rows"]}
    for aid, e in world.items():
        row = rows[aid]
        assert row["score"] == e["score"] and row["band"] == e["band"]
        assert row["change_7d"] == e["score"] - e["previous"]
        assert row["open_signals"] == e["open_signals"]
        assert row["segments"] == e["segments"]
        assert row["mrr"] == e["mrr"] and row["plan"] == e["plan"]
        # The window opens with the score in force 30 days ago, then the changes.
        assert [p["score"] for p in row["trend_30d"]] == [
            e["score"] - 20,
            e["previous"],
            e["score"],
        ]
        assert row["trend_30d"][-1]["at"] == AS_OF
    unscored = rows["zz-unscored"]
    assert unscored["score"] is None and unscored["trend_30d"] == []
    assert unscored["change_7d"] is None and unscored["segments"] == []


@pytest.mark.parametrize(
    ("filters", "wanted"),
    [
        ({"band": "at_risk"}, lambda e: e["band"] == "at_risk"),
        ({"band": "healthy"}, lambda e: e["band"] == "healthy"),
        ({"segment": "enterprise"}, lambda e: e["segment"] == "enterprise"),
        ({"crm_segment": "expansion-ready"}, lambda e: "expansion-ready" in e["segments"]),
        ({"crm_segment": "at-risk"}, lambda e: "at-risk" in e["segments"]),
        (
            {"owner": "dana@example.com"},
            lambda e: "dana@example.com" in (e["owner"], e["csm"]),
        ),
        ({"owner": "alex@example.com"}, lambda e: e["owner"] == "alex@example.com"),
        ({"integration": "zendesk"}, lambda e: e["zendesk"]),
        (
            {"band": "at_risk", "segment": "smb", "owner": "sam@example.com"},
            lambda e: (
                e["band"] == "at_risk" and e["segment"] == "smb" and e["owner"] == "sam@example.com"
            ),
        ),
    ],
    ids=[
        "band-at-risk",
        "band-healthy",
        "segment",
        "crm-expansion",
        "crm-at-risk",
        "owner-or-csm",
        "owner",
        "integration",
        "combined",
    ],
)
def test_filters_keep_exactly_the_matching_accounts(engine, world, filters, wanted):
    doc = _all(engine, **filters)
    expected = {aid for aid, e in world.items() if wanted(e)}
    assert expected, "the case must select something"
    assert set(_ids(doc)) == expected
    assert doc["total"] == len(expected)
    assert doc["filters"] | filters == doc["filters"]


def test_unscored_band_filter_finds_accounts_without_a_score(engine, world):
    assert _ids(_all(engine, band="unscored")) == ["zz-unscored"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("account 1", {f"a{i:02d}" for i in range(10, 20)}),
        ("ACCOUNT 07", {"a07"}),
        ("a05.example", {"a05"}),
        ("A05.EXAMPLE.COM", {"a05"}),
        ("%", {"a04"}),
        ("A07", {"a07"}),
        ("_real_", {"a04"}),
        ("o'brien", {"a04"}),
        ("<script>", {"a03"}),
        ("'; DROP TABLE accounts; --", set()),
        ("\\", set()),
        ("   ", None),
    ],
    ids=[
        "substring",
        "case",
        "domain",
        "domain-case",
        "percent-literal",
        "account-id",
        "underscore-literal",
        "quote",
        "script",
        "injection",
        "backslash",
        "blank-is-no-filter",
    ],
)
def test_search_is_a_bound_case_insensitive_substring_of_name_or_domain(engine, world, q, expected):
    doc = _all(engine, q=q)
    if expected is None:
        assert doc["total"] == N + 1 and doc["filters"]["q"] is None
    else:
        assert set(_ids(doc)) == expected
    assert _all(engine)["total"] == N + 1  # the tables are still there


def test_tiles_sum_the_filtered_accounts(engine, world):
    tiles = _all(engine)["tiles"]
    assert tiles["accounts"] == N + 1
    for band in views.BANDS:
        assert tiles["bands"][band] == sum(1 for e in world.values() if e["band"] == band)
    assert tiles["bands"]["unscored"] == 1
    assert tiles["at_risk_mrr"] == sum(
        e["mrr"] for e in world.values() if "at-risk" in e["segments"]
    )
    assert tiles["at_risk_accounts"] == sum(1 for e in world.values() if "at-risk" in e["segments"])
    assert tiles["expansion_ready_mrr"] == sum(
        e["mrr"] for e in world.values() if "expansion-ready" in e["segments"]
    )
    assert tiles["broken_connections"] == sum(1 for e in world.values() if e["broken"])
    smb = _all(engine, segment="smb")["tiles"]
    assert smb["broken_connections"] == sum(
        1 for e in world.values() if e["broken"] and e["segment"] == "smb"
    )
    assert smb["accounts"] == 1 + sum(1 for e in world.values() if e["segment"] == "smb")


def test_choices_list_people_integrations_and_segments(engine, world):
    choices = _all(engine)["choices"]
    assert choices["owners"] == ["alex@example.com", "dana@example.com", "sam@example.com"]
    assert [i["key"] for i in choices["integrations"]] == [] or all(
        "key" in i and "name" in i for i in choices["integrations"]
    )
    assert choices["crm_segments"] == ["expansion-ready", "at-risk", "onboarding"]
    assert set(choices["sorts"]) == set(views.SORTS)


@pytest.mark.parametrize(
    "bad",
    [
        {"sort": "score; DROP TABLE x"},
        {"order": "sideways"},
        {"band": "great"},
        {"crm_segment": "x"},
    ],
)
def test_a_parameter_the_view_does_not_know_is_refused(engine, world, bad):
    with pytest.raises(views.ViewError):
        _all(engine, **bad)


def test_page_size_is_clamped_and_the_document_is_json(engine, world):
    doc = views.portfolio(engine, CONFIG, as_of=AS_OF, page_size=10_000, page=0)
    assert doc["page_size"] == views.MAX_PAGE_SIZE and doc["page"] == 1
    text = dumps(doc)
    assert HOSTILE in text and '"2026-11-20T12:00:00' in text


# ---------------------------------------------------------------- integrations


@pytest.fixture
def scored(engine: Engine) -> datetime:
    """Acme (7 integrations, Zendesk failing) and a few short-lived connections,
    ingested and scored through the real paths."""
    import_accounts(engine, [account("acme", name="Acme Corp"), account("beta"), account("gamma")])
    feed = Feed()
    acme_like(feed)
    feed.install("beta", "zendesk", 100)
    feed.syncs("beta", "zendesk", range(99, 60, -1))
    feed.install("gamma", "zendesk", 50)
    feed.install("gamma", "salesforce", 10)
    feed.ingest(engine)
    when = feed.end
    report = score_accounts(engine, CONFIG, as_of=when, full=True)
    evaluate_signals(engine, CONFIG, as_of=when, scored_facts=report.all_facts)
    return when


def test_integration_page_has_funnel_retention_with_band_ttv_and_states(engine, scored):
    doc = views.integration_page(engine, CONFIG, "zendesk", as_of=scored, compute_impact=False)
    assert doc["integration"]["key"] == "zendesk"
    stages = {s["stage"]: s["count"] for s in doc["stages"]}
    assert stages["installed"] == 3 and stages["activated"] == 2
    assert doc["largest_drop"] is not None
    overall = doc["retention"]["overall"]
    assert overall["connections"] == 2 and overall["ended"] == 1
    for p in overall["curve"]:
        assert 0 <= p["lower"] <= p["retained"] <= p["upper"] <= 1
    assert overall["censor_days"] and overall["at_risk"]["0"] == 2
    assert doc["retention"]["cohorts"] and doc["retention"]["cohort_by"] == "month"
    assert doc["ttv"]["installs"] == 3 and doc["ttv"]["censored"] == 1
    assert set(doc["states"]) == {"active", "broken", "idle", "uninstalled"}
    assert doc["impact"] is None
    dumps(doc)


def test_integration_page_reads_a_cached_impact_document(engine, scored):
    cached = {
        "integration": "zendesk",
        "outcome": "churned",
        "lift": -4.2,
        "lift_ci95": [-7.0, -1.1],
        "band": "strong",
        "matching": {"bootstrap": 1000},
    }
    with engine.begin() as conn:
        conn.execute(
            insert(KeyValue.__table__).values(
                key=views.impact_cache_key("zendesk", "churned"), value=cached, updated_at=scored
            )
        )
    doc = views.integration_page(engine, CONFIG, "zendesk", as_of=scored)
    impact = doc["impact"]
    assert impact["source"] == "cached" and impact["bootstrap"] == 1000
    assert impact["lift"] == -4.2 and impact["lift_ci95"] == [-7.0, -1.1]
    overview = views.integrations_overview(engine, CONFIG, as_of=scored)
    by_key = {r["integration"]: r for r in overview["integrations"]}
    assert by_key["zendesk"]["impact"]["band"] == "strong"
    assert by_key["salesforce"]["impact"] is None


def test_integration_page_computes_impact_with_few_resamples_when_not_cached(engine, scored):
    impact = views.integration_page(engine, CONFIG, "zendesk", as_of=scored)["impact"]
    assert impact["source"] in ("computed", "error")
    if impact["source"] == "computed":
        assert impact["bootstrap"] == views.WEB_BOOTSTRAP


def test_unknown_integration_is_a_lookup_error(engine, scored):
    with pytest.raises(views.UnknownIntegration):
        views.integration_page(engine, CONFIG, "<nope>", as_of=scored)


def test_integrations_overview_lists_funnel_retention_and_ttv(engine, scored):
    doc = views.integrations_overview(engine, CONFIG, as_of=scored, retention=True)
    rows = {r["integration"]: r for r in doc["integrations"]}
    assert {"zendesk", "salesforce", "snowflake"} <= set(rows)
    z = rows["zendesk"]
    assert z["installed"] == 3 and z["stages"][0]["count"] == 3
    assert z["ttv"]["installs"] == 3 and "30" in z["retention"]["retained_at"]
    quick = views.integrations_overview(engine, CONFIG, as_of=scored)
    assert {r["integration"]: r["installed"] for r in quick["integrations"]} == {
        k: r["installed"] for k, r in rows.items()
    }
    assert all(r["retention"] is None for r in quick["integrations"])


def test_greenwood_band_matches_lifelines():
    lifelines = pytest.importorskip("lifelines")
    durations = [3, 5, 5, 8, 10, 12, 12, 15, 20, 22, 30, 31, 40]
    ended = [True, True, False, True, True, False, True, True, False, True, True, False, True]
    ours = views.km_with_band(durations, ended)
    kmf = lifelines.KaplanMeierFitter().fit(durations, ended)
    ci = kmf.confidence_interval_survival_function_
    for p in ours:
        assert p["lower"] == pytest.approx(ci.iloc[:, 0].loc[p["day"]], abs=1e-9)
        assert p["upper"] == pytest.approx(ci.iloc[:, 1].loc[p["day"]], abs=1e-9)


# ---------------------------------------------------------------- tasks, ops, syncs


def _task(conn: Any, **kw: Any) -> None:
    values = {
        "account_id": "a00",
        "signal_kind": "health_degradation",
        "title": "Fix it",
        "status": "open",
        "created_at": AS_OF - timedelta(days=2),
        "updated_at": AS_OF - timedelta(days=1),
        "due_at": AS_OF + timedelta(hours=4),
    }
    conn.execute(insert(Task.__table__).values(**(values | kw)))


def test_tasks_queue_groups_by_owner_then_status(engine, world):
    with engine.begin() as conn:
        _task(conn, owner="dana@example.com", title=HOSTILE)
        _task(conn, owner="dana@example.com", status="claimed", claimed_by="dana@example.com")
        _task(conn, owner="dana@example.com", status="done")
        _task(conn, owner="alex@example.com", due_at=AS_OF - timedelta(hours=1))
        _task(conn, owner=None, status="snoozed", snoozed_until=AS_OF + timedelta(days=7))
        _task(conn, owner="alex@example.com", created_at=AS_OF + timedelta(days=1))  # future
    doc = views.tasks_queue(engine, as_of=AS_OF)
    owners = [g["owner"] for g in doc["owners"]]
    assert owners == ["alex@example.com", "dana@example.com", None]
    dana = doc["owners"][1]
    assert [s["status"] for s in dana["statuses"]] == ["open", "claimed"]
    assert dana["counts"]["done"] == 1
    assert dana["statuses"][0]["tasks"][0]["title"] == HOSTILE
    assert dana["statuses"][0]["tasks"][0]["account_name"] == "Account 00"
    assert doc["overdue"] == 1
    assert doc["counts"] == {"open": 2, "claimed": 1, "snoozed": 1, "done": 1}
    done = views.tasks_queue(engine, as_of=AS_OF, status="done", owner="dana@example.com")
    assert [g["owner"] for g in done["owners"]] == ["dana@example.com"]
    with pytest.raises(views.ViewError):
        views.tasks_queue(engine, as_of=AS_OF, status="nope")


def test_ops_view_reports_feed_alarm_and_failures_in_a_row(engine, world):
    now = AS_OF
    with engine.begin() as conn:
        conn.execute(
            insert(KeyValue.__table__).values(
                key=FEED_KEY, value={"source": "ingest"}, updated_at=now - timedelta(hours=8)
            )
        )
        conn.execute(
            insert(Signal.__table__).values(
                account_id="",
                kind="feed_stale",
                subject="",
                status="open",
                fired_at=now - timedelta(hours=2),
                details={"hours_without_events": 6},
            )
        )
        for k, status in enumerate(["ok", "failed", "failed", "running"]):
            at = now - timedelta(minutes=30 * (4 - k))
            conn.execute(
                insert(JobRun.__table__).values(
                    job_id="rescore",
                    scheduled_at=at,
                    started_at=at,
                    finished_at=None if status == "running" else at + timedelta(seconds=3),
                    status=status,
                    error="boom" if status == "failed" else None,
                )
            )
    doc = views.ops_view(
        engine,
        CONFIG,
        now=now,
        scheduler={"rescore": {"description": "rescore", "next_run_at": now, "stale": False}},
    )
    assert doc["feed"]["stale"] is True and doc["feed"]["hours_since_received"] == 8
    assert doc["feed"]["alarm"]["details"] == {"hours_without_events": 6}
    job = doc["jobs"][0]
    assert job["job_id"] == "rescore" and job["failures_in_a_row"] == 2
    assert job["state"] == "running" and job["last_error"] == "boom"
    assert job["next_run_at"] == now and job["description"] == "rescore"
    assert doc["failing_jobs"] == ["rescore"]
    dumps(doc)


def test_sync_history_and_one_run_with_its_record_errors(engine):
    start = AS_OF - timedelta(hours=1)
    with engine.begin() as conn:
        for k, dest in enumerate(["hubspot", "salesforce", "hubspot"]):
            conn.execute(
                insert(SyncRun.__table__).values(
                    destination=dest,
                    started_at=start + timedelta(minutes=k),
                    finished_at=start + timedelta(minutes=k, seconds=12),
                    status="ok",
                    planned=10,
                    written=8,
                    unchanged=1,
                    failed=1,
                    api_calls=3,
                    details={
                        "failures": [{"account_id": "a01", "record_id": "r1", "error": HOSTILE}],
                        "seconds": 12.5,
                    },
                )
            )
        last_id = conn.execute(
            select(SyncRun.__table__.c.id).order_by(SyncRun.__table__.c.id.desc())
        ).scalar()
    doc = views.sync_history(engine, limit=2)
    assert [r["destination"] for r in doc["runs"]] == ["hubspot", "salesforce"]
    assert doc["destinations"] == ["hubspot", "salesforce"]
    assert doc["runs"][0]["seconds"] == 12.5 and doc["runs"][0]["written"] == 8
    only = views.sync_history(engine, destination="salesforce")
    assert [r["destination"] for r in only["runs"]] == ["salesforce"]
    run = views.sync_run(engine, last_id)
    assert run["failures"][0]["error"] == HOSTILE and run["api_calls"] == 3
    with pytest.raises(views.UnknownSyncRun):
        views.sync_run(engine, 999_999)
