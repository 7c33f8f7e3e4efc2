"""Signal rules fire at their thresholds, once per episode, resolve when their condition
clears, fire again later, and hold back while the event feed is stale."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from integration_signals.scoring.rules import GLOBAL, RULES
from integration_signals.scoring.signal_facts import project_limit_day
from integration_signals.scoring.signals import evaluate_signals, feed_stale_open
from tests.scoring.world import (
    AS_OF,
    CONFIG,
    TODAY,
    World,
    at,
    segments,
    signals,
    task_events,
    tasks,
)


def evaluate(engine: Engine, as_of: datetime = AS_OF, **kw):  # type: ignore[no-untyped-def]
    return evaluate_signals(engine, CONFIG, as_of=as_of, **kw)


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


# ---------------------------------------------------------------- health degradation


@pytest.mark.parametrize(
    ("ok", "failed", "fires"),
    [
        pytest.param(799, 201, True, id="79.9%-of-1000-fires"),
        pytest.param(800, 200, False, id="80.0%-of-1000-holds"),
        pytest.param(3, 1, False, id="75%-but-4-attempts-too-few"),
        pytest.param(3, 2, True, id="60%-with-5-attempts-fires"),
    ],
)
def test_health_degradation_fires_below_80_percent_with_at_least_5_attempts(
    engine: Engine, ok: int, failed: int, fires: bool
):
    w = World(engine)
    w.account()
    w.score_row("acme")
    # Spread over the 7-day window (today included); a bad day before it does not count.
    w.syncs(days_ago(9), ok=0, failed=50)
    per_day = [
        (ok * k // 7 - ok * (k - 1) // 7, failed * k // 7 - failed * (k - 1) // 7)
        for k in range(1, 8)
    ]
    for n, (day_ok, day_failed) in zip(range(6, -1, -1), per_day, strict=True):
        w.syncs(days_ago(n), ok=day_ok, failed=day_failed)
    w.ingest()
    report = evaluate(engine)
    found = signals(engine, "health_degradation")
    assert bool(found) is fires
    if fires:
        (sig,) = found
        assert sig.subject == "acme-salesforce"
        assert sig.details["attempts"] == ok + failed
        assert sig.details["success_rate"] == round(ok / (ok + failed), 4)
        (task,) = tasks(engine, "health_degradation")
        assert task.owner == "dana@example.com"
        assert task.due_at.replace(tzinfo=UTC) == AS_OF + timedelta(hours=4)
        assert "Salesforce" in task.title and f"{failed} of {ok + failed} failed" in task.title
        assert segments(engine, "acme") == ["at-risk"]
        assert report.fired == [
            {
                "id": sig.id,
                "account_id": "acme",
                "kind": "health_degradation",
                "subject": sig.subject,
            }
        ]
    else:
        assert segments(engine, "acme") == []


# ---------------------------------------------------------------- abandonment


@pytest.mark.parametrize(
    ("integration", "idle", "fires"),
    [
        pytest.param("salesforce", 13, False, id="daily-day-13"),
        pytest.param("salesforce", 14, True, id="daily-day-14"),
        pytest.param("docusign", 14, False, id="situational-waits-for-its-30-day-window"),
        pytest.param("docusign", 30, True, id="situational-day-30"),
    ],
)
def test_abandonment_fires_on_day_14_without_usage(
    engine: Engine, integration: str, idle: int, fires: bool
):
    w = World(engine)
    w.account()
    for n in range(idle + 20, idle - 1, -1):
        w.syncs(days_ago(n), integration=integration)
    w.ingest()
    evaluate(engine)
    found = signals(engine, "abandonment")
    assert bool(found) is fires
    if fires:
        assert found[0].details["idle_days"] == idle
        (task,) = tasks(engine, "abandonment")
        # due by the end of the day it fired on (day 14 of inactivity)
        assert task.due_at.replace(tzinfo=UTC) == datetime(2026, 11, 21, tzinfo=UTC)
        assert task.owner == "dana@example.com"


def test_abandonment_needs_a_previously_active_connection_that_was_not_uninstalled(
    engine: Engine,
):
    w = World(engine)
    w.account()
    w.api_calls(days_ago(30), 500, integration="hubspot")  # used, never synced
    w.event("integration.installed", at(days_ago(40)), integration="zendesk")  # never used
    w.syncs(days_ago(30), integration="snowflake")
    w.event("integration.uninstalled", at(days_ago(29)), integration="snowflake")
    w.syncs(days_ago(2), ok=0, failed=3, integration="marketo")  # broken, not idle
    w.syncs(days_ago(25), integration="marketo")
    w.ingest()
    evaluate(engine)
    assert signals(engine, "abandonment") == []


# ---------------------------------------------------------------- API limit


@pytest.mark.parametrize(
    ("calls", "fires"),
    [pytest.param(7_400, False, id="74%"), pytest.param(7_500, True, id="75%")],
)
def test_api_limit_proximity_fires_at_75_percent_of_the_daily_limit(
    engine: Engine, calls: int, fires: bool
):
    w = World(engine)
    w.account(api_limit_daily=10_000)
    w.score_row("acme")
    for n in range(1, 8):
        w.api_calls(days_ago(n), calls)
    w.api_calls(days_ago(8), 0)
    w.api_calls(TODAY, 90_000)  # today is not a whole day yet: not in the average
    w.ingest()
    evaluate(engine)
    found = signals(engine, "api_limit_proximity")
    assert bool(found) is fires
    if fires:
        assert found[0].details["ratio"] == 0.75
        (task,) = tasks(engine, "api_limit_proximity")
        assert task.owner == "alex@example.com"  # the account executive
        assert segments(engine, "acme") == ["expansion-ready"]


def test_api_limit_projection_follows_a_known_linear_trend_and_sets_the_due_date(
    engine: Engine,
):
    w = World(engine)
    w.account(api_limit_daily=9_900)
    # 28 whole days ending yesterday: 7,000 calls rising by 20 a day.
    for k in range(28):
        w.api_calls(days_ago(28 - k), 7_000 + 20 * k)
    w.ingest()
    evaluate(engine)
    (sig,) = signals(engine, "api_limit_proximity")
    # 7,000 + 20x = 9,900 at x = 145 days after the first day (28 days ago).
    projected = days_ago(28) + timedelta(days=145)
    assert sig.details["projected_limit_date"] == projected.isoformat()
    assert sig.details["slope_per_day"] == 20.0
    assert sig.details["average_daily_calls"] == 7_480.0
    (task,) = tasks(engine, "api_limit_proximity")
    due = datetime.combine(projected - timedelta(days=30), datetime.min.time(), tzinfo=UTC)
    assert task.due_at.replace(tzinfo=UTC) == due
    assert projected.isoformat() in task.title


@settings(max_examples=60, deadline=None)
@given(
    intercept=st.integers(0, 50_000),
    slope=st.integers(1, 2_000),
    headroom=st.integers(1, 100_000),
)
def test_projection_of_an_exact_line_is_the_first_day_at_the_limit(
    intercept: int, slope: int, headroom: int
):
    first = date(2026, 10, 1)
    daily = [intercept + slope * x for x in range(28)]
    today = first + timedelta(days=28)
    limit = intercept + slope * 28 + headroom
    expected_x = -(-(limit - intercept) // slope)  # ceil
    got = project_limit_day(daily, first, limit, today=today, horizon_days=100_000)
    assert got == first + timedelta(days=expected_x)


def test_projection_is_none_for_a_flat_or_falling_trend():
    first = date(2026, 10, 1)
    today = first + timedelta(days=28)
    assert project_limit_day([500] * 28, first, 1000, today=today, horizon_days=730) is None
    falling = [900 - x for x in range(28)]
    assert project_limit_day(falling, first, 1000, today=today, horizon_days=730) is None
    assert project_limit_day([1200] * 28, first, 1000, today=today, horizon_days=730) == today


# ---------------------------------------------------------------- activation, auth, onboarding


def _activate(w: World, integrations: list[tuple[str, int]]) -> None:
    for integration, first_day in integrations:
        for n in range(first_day, -1, -1):
            w.syncs(days_ago(n), integration=integration)


@pytest.mark.parametrize(
    ("plan", "fires"),
    [
        pytest.param([("salesforce", 200), ("hubspot", 100)], False, id="two-active"),
        pytest.param(
            [("salesforce", 200), ("hubspot", 100), ("zendesk", 10)], True, id="third-10-days-ago"
        ),
        pytest.param(
            [("salesforce", 200), ("hubspot", 100), ("zendesk", 60)], False, id="third-60-days-ago"
        ),
    ],
)
def test_integration_activated_fires_when_the_third_integration_goes_live(
    engine: Engine, plan: list[tuple[str, int]], fires: bool
):
    w = World(engine)
    w.account()
    w.score_row("acme")
    _activate(w, plan)
    w.ingest()
    evaluate(engine)
    found = signals(engine, "integration_activated")
    assert bool(found) is fires
    if fires:
        assert found[0].details["integration"] == "zendesk"
        (task,) = tasks(engine, "integration_activated")
        assert task.owner == "alex@example.com"
        assert task.due_at.replace(tzinfo=UTC) == AS_OF  # immediate
        assert segments(engine, "acme") == ["expansion-ready"]


def test_expansion_task_without_an_account_executive_goes_to_the_fallback(engine: Engine):
    config = CONFIG.model_copy(
        update={
            "signals": CONFIG.signals.model_copy(update={"fallback_owner": "revops@example.com"})
        }
    )
    w = World(engine, config)
    w.account(owner=None)
    _activate(w, [("salesforce", 200), ("hubspot", 100), ("zendesk", 10)])
    w.ingest()
    evaluate_signals(engine, config, as_of=AS_OF)
    (task,) = tasks(engine, "integration_activated")
    assert task.owner == "revops@example.com"


def test_auth_expired_fires_until_restored_and_the_fix_task_closes(engine: Engine):
    w = World(engine)
    w.account()
    w.syncs(days_ago(3))
    w.event("auth.expired", at(days_ago(1)))
    w.ingest()
    evaluate(engine)
    (sig,) = signals(engine, "auth_expired")
    (task,) = tasks(engine, "auth_expired")
    assert task.due_at.replace(tzinfo=UTC) == AS_OF + timedelta(hours=4)
    later = AS_OF + timedelta(hours=2)
    w.event("auth.restored", later - timedelta(hours=1))
    w.ingest(now=later)
    report = evaluate(engine, later)
    (sig,) = signals(engine, "auth_expired")
    assert sig.status == "resolved" and sig.resolved_at.replace(tzinfo=UTC) == later
    assert [r["kind"] for r in report.resolved] == ["auth_expired"]
    (task,) = tasks(engine, "auth_expired")
    assert task.status == "done"
    last = task_events(engine, task.id)[-1]
    assert (last.actor, last.from_status, last.to_status) == ("system", "open", "done")


@pytest.mark.parametrize(
    ("tenure", "fires"),
    [pytest.param(4, False, id="day-4"), pytest.param(5, True, id="day-5")],
)
def test_onboarding_without_a_first_sync_fires_on_day_5(engine: Engine, tenure: int, fires: bool):
    w = World(engine)
    w.account(created_days_ago=tenure)
    w.event("integration.installed", at(days_ago(tenure - 1)))
    w.heartbeat(AS_OF)
    evaluate(engine)
    found = signals(engine, "onboarding_no_first_sync")
    assert bool(found) is fires
    if fires:
        (task,) = tasks(engine, "onboarding_no_first_sync")
        assert task.due_at.replace(tzinfo=UTC) == AS_OF - timedelta(days=tenure) + timedelta(days=7)


@pytest.mark.parametrize(
    ("tenure", "active", "fires"),
    [
        pytest.param(59, 1, False, id="day-59-one-active"),
        pytest.param(60, 1, True, id="day-60-one-active"),
        pytest.param(60, 3, False, id="day-60-three-active"),
        pytest.param(90, 1, False, id="day-90-onboarding-over"),
    ],
)
def test_onboarding_low_activation_fires_with_fewer_than_3_active_by_day_60(
    engine: Engine, tenure: int, active: int, fires: bool
):
    w = World(engine)
    w.account(created_days_ago=tenure)
    w.score_row("acme", stage="onboarding")
    _activate(w, [(k, 20) for k in ("salesforce", "hubspot", "zendesk")[:active]])
    w.ingest()
    evaluate(engine)
    assert bool(signals(engine, "onboarding_low_activation")) is fires
    assert "onboarding" in segments(engine, "acme")


# ---------------------------------------------------------------- episodes


def test_rerunning_never_duplicates_a_signal_or_a_task(engine: Engine):
    w = World(engine)
    w.account()
    w.syncs(days_ago(1), ok=1, failed=5)
    w.syncs(days_ago(20), integration="hubspot")
    w.ingest()
    first = evaluate(engine)
    assert {f["kind"] for f in first.fired} == {"health_degradation", "abandonment"}
    for _ in range(3):
        again = evaluate(engine)
        assert again.fired == [] and again.resolved == [] and again.tasks_created == 0
    assert len(signals(engine)) == 2 and len(tasks(engine)) == 2


def test_concurrent_runs_open_one_episode_and_one_task(engine: Engine):
    w = World(engine)
    w.account()
    w.syncs(days_ago(1), ok=1, failed=5)
    w.ingest()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            evaluate(engine)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(signals(engine, "health_degradation")) == 1
    assert len(tasks(engine, "health_degradation")) == 1


def test_an_episode_resolves_when_its_condition_clears_and_fires_again_later(engine: Engine):
    w = World(engine)
    w.account()
    w.score_row("acme")
    w.syncs(days_ago(1), ok=1, failed=5)
    w.ingest()
    evaluate(engine)
    assert segments(engine, "acme") == ["at-risk"]

    healed = AS_OF + timedelta(days=8)  # the failures have left the 7-day window
    w.syncs(healed.date() - timedelta(days=1), ok=10)
    w.ingest(now=healed)
    report = evaluate(engine, healed)
    assert [r["kind"] for r in report.resolved] == ["health_degradation"]
    assert segments(engine, "acme") == []

    again = healed + timedelta(days=3)
    w.syncs(again.date() - timedelta(days=1), ok=0, failed=20)
    w.ingest(now=again)
    evaluate(engine, again)
    episodes = signals(engine, "health_degradation")
    assert [(e.status, e.fired_at.replace(tzinfo=UTC)) for e in episodes] == [
        ("resolved", AS_OF),
        ("open", again),
    ]
    assert episodes[0].resolved_at.replace(tzinfo=UTC) == healed
    assert [t.status for t in tasks(engine, "health_degradation")] == ["done", "open"]
    assert segments(engine, "acme") == ["at-risk"]


def test_evaluating_some_accounts_leaves_the_others_alone(engine: Engine):
    w = World(engine)
    for account in ("a1", "a2"):
        w.account(account)
        w.syncs(days_ago(1), ok=1, failed=5, account=account)
    w.ingest()
    report = evaluate(engine, account_ids=["a1"])
    assert report.accounts == 1
    assert [s.account_id for s in signals(engine)] == ["a1"]


# ---------------------------------------------------------------- the feed_stale guard


@pytest.mark.parametrize(
    ("quiet", "stale"),
    [
        pytest.param(timedelta(hours=5, minutes=59), False, id="5h59m"),
        pytest.param(timedelta(hours=6), True, id="6h"),
    ],
)
def test_feed_stale_opens_after_6_hours_without_events(engine: Engine, quiet, stale):
    w = World(engine)
    w.account()
    w.syncs(days_ago(1))
    w.ingest(now=AS_OF)
    report = evaluate(engine, AS_OF + quiet)
    assert report.feed_stale is stale
    assert feed_stale_open(engine) is stale
    assert bool(signals(engine, "feed_stale")) is stale


def test_feed_stale_holds_risk_signals_raises_one_alert_and_clears_when_events_flow(
    engine: Engine,
):
    w = World(engine)
    w.account()
    w.score_row("acme")
    w.syncs(days_ago(1), ok=1, failed=5)
    w.ingest(now=AS_OF - timedelta(hours=7))

    stale_at = AS_OF
    report = evaluate(engine, stale_at)
    assert report.feed_stale and report.held_back == 1
    assert signals(engine, "health_degradation") == []
    for hours in (1, 2):
        evaluate(engine, stale_at + timedelta(hours=hours))
    (guard,) = signals(engine, "feed_stale")
    assert guard.account_id == GLOBAL and guard.status == "open"
    (alert,) = tasks(engine, "feed_stale")
    assert alert.account_id == GLOBAL and alert.due_at.replace(tzinfo=UTC) == stale_at

    flowing = stale_at + timedelta(hours=3)
    w.heartbeat(flowing)
    report = evaluate(engine, flowing)
    assert not report.feed_stale and not feed_stale_open(engine)
    (guard,) = signals(engine, "feed_stale")
    assert guard.status == "resolved" and guard.resolved_at.replace(tzinfo=UTC) == flowing
    assert [f["kind"] for f in report.fired] == ["health_degradation"]


def test_open_signals_keep_their_state_while_the_feed_is_stale(engine: Engine):
    w = World(engine)
    w.account()
    w.syncs(days_ago(1), ok=1, failed=5)
    w.ingest()
    evaluate(engine)
    # Eight quiet days: the failures left the window, but nothing arrived to prove it.
    quiet = AS_OF + timedelta(days=8)
    report = evaluate(engine, quiet)
    assert report.feed_stale and report.resolved == []
    (sig,) = signals(engine, "health_degradation")
    assert sig.status == "open"
    w.heartbeat(quiet + timedelta(hours=1))
    report = evaluate(engine, quiet + timedelta(hours=1))
    assert {r["kind"] for r in report.resolved} == {"feed_stale", "health_degradation"}


def test_a_backfill_of_history_is_not_a_stale_feed_at_the_time_it_describes(engine: Engine):
    w = World(engine)
    w.account()
    w.syncs(days_ago(10), ok=24)  # one sync an hour, all ten days ago
    w.ingest(now=AS_OF)  # received today
    assert not evaluate(engine, at(days_ago(10), 23.0)).feed_stale
    assert evaluate(engine, at(days_ago(9), 12.0)).feed_stale


def test_every_rule_kind_is_unique_and_has_a_task():
    kinds = [r.kind for r in RULES]
    assert len(kinds) == len(set(kinds))
    assert set(kinds) >= {
        "integration_activated",
        "api_limit_proximity",
        "health_degradation",
        "abandonment",
        "onboarding_no_first_sync",
        "onboarding_low_activation",
        "auth_expired",
    }


def test_an_expansion_episode_ends_with_its_window_but_its_sales_task_stays(engine: Engine):
    w = World(engine)
    w.account()
    w.score_row("acme")
    _activate(w, [("salesforce", 200), ("hubspot", 100), ("zendesk", 10)])
    w.ingest()
    evaluate(engine)
    later = AS_OF + timedelta(days=50)  # the 3rd activation is now 60 days old
    for n in range(49, -1, -1):
        for integration in ("salesforce", "hubspot", "zendesk"):
            w.syncs(later.date() - timedelta(days=n), integration=integration)
    w.ingest(now=later)
    report = evaluate(engine, later)
    assert [r["kind"] for r in report.resolved] == ["integration_activated"]
    (task,) = tasks(engine, "integration_activated")
    assert task.status == "open"
    assert segments(engine, "acme") == []


@pytest.mark.parametrize(
    ("band", "stage", "expected"),
    [
        pytest.param("at_risk", "scored", ["at-risk"], id="at-risk-band"),
        pytest.param("watch", "scored", [], id="watch-band"),
        pytest.param("healthy", "onboarding", ["onboarding"], id="onboarding-stage"),
    ],
)
def test_segments_follow_the_score_as_well_as_the_signals(
    engine: Engine, band: str, stage: str, expected: list[str]
):
    w = World(engine)
    w.account()
    w.score_row("acme", band=band, stage=stage)
    w.syncs(days_ago(1), ok=5)
    w.ingest()
    report = evaluate(engine)
    assert segments(engine, "acme") == expected
    assert report.segments_changed == (1 if expected else 0)


def test_reusing_scorings_facts_gives_the_same_signals_as_reloading(db_url, tmp_path):
    """`signals score` hands the facts scoring just loaded to the rules; the episodes,
    tasks and segments must be exactly those of a run that loads its own."""
    from datetime import UTC, datetime

    from integration_signals.config import load_config
    from integration_signals.scoring.run import score_accounts
    from integration_signals.scoring.signals import evaluate_signals
    from integration_signals.store.accounts import import_account_objects
    from integration_signals.store.demo import generate
    from integration_signals.store.engine import make_engine
    from integration_signals.store.ingest import Ingestor, read_objects
    from integration_signals.store.models import AccountScore, Signal, Task

    config = load_config(None)
    end = datetime(2026, 11, 20, 12, tzinfo=UTC)
    data = generate(11, 40, end=end)

    def run(name: str, reuse: bool):  # type: ignore[no-untyped-def]
        if db_url.startswith("sqlite"):
            engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        else:
            from tests.conftest import _truncate_all

            _truncate_all(db_url)
            engine = make_engine(db_url)
        import_account_objects(engine, data.accounts, source="t", now=end)
        Ingestor(engine, config, now=end).ingest(read_objects(data.events), source="t")
        scored = score_accounts(engine, config, as_of=end, full=True)
        assert scored.all_facts is not None and len(scored.all_facts) == 40
        evaluate_signals(
            engine, config, as_of=end, scored_facts=scored.all_facts if reuse else None
        )
        with engine.connect() as conn:
            signals = sorted(
                (r.account_id, r.kind, r.subject, r.status, str(r.details))
                for r in conn.execute(select(Signal))
            )
            tasks = sorted(
                (r.account_id, r.signal_kind, r.title, r.owner, r.due_at, r.status)
                for r in conn.execute(select(Task))
            )
            segments = sorted(
                (r.account_id, tuple(r.segments or ())) for r in conn.execute(select(AccountScore))
            )
        engine.dispose()
        return signals, tasks, segments

    reused = run("reused", True)
    assert reused[0], "the data set should fire some signals"
    assert run("reloaded", False) == reused


def test_a_thousand_episodes_fire_at_once_each_with_one_task_and_one_history_row(engine: Engine):
    """Past COPY_MIN_ROWS, PostgreSQL opens episodes and tasks through COPY: same rows."""
    from integration_signals.store.accounts import import_account_objects
    from integration_signals.store.bulk import COPY_MIN_ROWS

    n = COPY_MIN_ROWS + 10
    created = (AS_OF - timedelta(days=5)).isoformat()
    import_account_objects(
        engine,
        [{"account_id": f"a{i:05d}", "segment": "smb", "created_at": created} for i in range(n)],
        source="test",
        now=AS_OF,
    )
    w = World(engine)
    for i in range(n):
        w.event("integration.installed", at(days_ago(4)), account=f"a{i:05d}")
    w.ingest()
    w.heartbeat(AS_OF)
    report = evaluate(engine)
    fired = signals(engine, "onboarding_no_first_sync")
    assert len(fired) == n and report.tasks_created == n
    by_signal = {t.signal_id: t for t in tasks(engine, "onboarding_no_first_sync")}
    assert sorted(by_signal) == sorted(s.id for s in fired)
    task = by_signal[fired[7].id]
    assert task.account_id == fired[7].account_id and task.status == "open"
    assert task.due_at.replace(tzinfo=UTC) == AS_OF - timedelta(days=5) + timedelta(days=7)
    (history,) = task_events(engine, task.id)
    assert (history.action, history.to_status) == ("create", "open")
    again = evaluate(engine)
    assert again.fired == [] and again.tasks_created == 0
