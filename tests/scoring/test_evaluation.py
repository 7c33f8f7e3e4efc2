"""`evaluate`: score and signals in one pass. An incremental run evaluates the signals
of the accounts it rescored and of those the clock alone can have changed, and its
result equals a full run at the same clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from integration_signals.scoring.evaluation import evaluate, time_driven_accounts
from integration_signals.scoring.run import score_accounts
from integration_signals.store.accounts import import_account_objects
from integration_signals.store.engine import make_engine
from integration_signals.store.models import AccountScore, Signal, Task
from tests.scoring import replay_world
from tests.scoring.world import CONFIG, TODAY, World, at

D = TODAY
T0 = at(D, 1.0)  # the first run: 01:00
SETUP = at(D - timedelta(days=1), 23.0)  # everything before T0 arrives by then
SIX = at(D, 6.0)  # the moment the clock-driven thresholds are crossed


def _account(engine: Engine, account_id: str, created_at: datetime) -> None:
    import_account_objects(
        engine,
        [
            {
                "account_id": account_id,
                "name": account_id.title(),
                "segment": "mid_market",
                "created_at": created_at.isoformat(),
                "csm": "dana@example.com",
                "owner": "alex@example.com",
            }
        ],
        source="test",
        now=SETUP,
    )


def _daily(w: World, account: str, integration: str, days: range, failed: int = 0) -> None:
    for ago in days:
        w.syncs(
            D - timedelta(days=ago), ok=2, failed=failed, account=account, integration=integration
        )


def build(engine: Engine) -> World:
    """Accounts whose rules the clock flips at 06:00 (none of their data changes after
    T0), accounts whose data changes after T0, and accounts that change in no way."""
    w = World(engine)
    # Day 5 without a first sync at 06:00 (installed, never synced).
    _account(engine, "newbie", SIX - timedelta(days=5))
    w.event("integration.installed", SIX - timedelta(days=4), "newbie", "salesforce")
    # Day 60 with one active integration at 06:00: low activation fires.
    _account(engine, "ramp", SIX - timedelta(days=60))
    _daily(w, "ramp", "salesforce", range(1, 20))
    # Day 90 at 06:00: onboarding is over, low activation resolves.
    _account(engine, "graduate", SIX - timedelta(days=90))
    _daily(w, "graduate", "salesforce", range(1, 20))
    # The 3rd integration went live 60 days before 06:00: the expansion window closes.
    _account(engine, "expander", SIX - timedelta(days=400))
    for key, first in (("salesforce", 200), ("hubspot", 100)):
        w.syncs(D - timedelta(days=first), account="expander", integration=key)
    w.event(
        "sync.succeeded",
        SIX - timedelta(days=60),
        "expander",
        "zendesk",
        records=1,
        trigger="scheduled",
    )
    for key in ("salesforce", "hubspot", "zendesk"):
        _daily(w, "expander", key, range(1, 4))
    # Abandoned 30 days ago: stays open, untouched.
    _account(engine, "steady", SIX - timedelta(days=500))
    _daily(w, "steady", "hubspot", range(30, 40))
    _daily(w, "steady", "salesforce", range(1, 10))
    # Fine at T0, failing after it (new data): health degradation fires.
    _account(engine, "breaker", SIX - timedelta(days=500))
    _daily(w, "breaker", "salesforce", range(1, 10))
    # Failing at T0, fixed after it by many successes (new data): resolves.
    _account(engine, "fixer", SIX - timedelta(days=500))
    _daily(w, "fixer", "salesforce", range(1, 4), failed=3)
    _account(engine, "quiet", SIX - timedelta(days=700))
    _daily(w, "quiet", "salesforce", range(1, 10))
    w.ingest(now=SETUP)
    w.heartbeat(T0)
    return w


def after_t0(w: World, now: datetime) -> None:
    """New data for breaker and fixer, received at ``now``."""
    for k in range(8):
        w.event(
            "sync.failed", T0 + timedelta(minutes=5 + k), "breaker", "salesforce", error="TIMEOUT"
        )
    for k in range(40):
        w.event(
            "sync.succeeded",
            T0 + timedelta(minutes=5 + k),
            "fixer",
            "salesforce",
            records=10,
            trigger="scheduled",
        )
    w.ingest(now=now)
    w.heartbeat(now)


def snapshot(engine: Engine) -> dict[str, Any]:
    def day(value: Any) -> Any:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    with engine.connect() as conn:
        return {
            "signals": sorted(
                (
                    r.account_id,
                    r.kind,
                    r.subject,
                    r.status,
                    day(r.fired_at),
                    day(r.resolved_at),
                    str(sorted((r.details or {}).items())),
                )
                for r in conn.execute(select(Signal))
            ),
            "tasks": sorted(
                (r.account_id, r.signal_kind, r.title, r.owner, day(r.due_at), r.status)
                for r in conn.execute(select(Task))
            ),
            "scores": sorted(
                (r.account_id, r.score, r.band, r.stage, tuple(r.segments or ()))
                for r in conn.execute(select(AccountScore))
            ),
        }


def _open(snap: dict[str, Any]) -> set[tuple[str, str]]:
    return {(s[0], s[1]) for s in snap["signals"] if s[3] == "open"}


@pytest.mark.parametrize(
    "t1",
    [
        pytest.param(at(D, 13.0), id="after-06:00"),
        pytest.param(SIX, id="at-06:00"),
        pytest.param(at(D, 5.0), id="before-06:00"),
    ],
)
def test_an_incremental_evaluation_equals_a_full_one_at_the_same_clock(
    engine: Engine, db_url: str, tmp_path: Any, t1: datetime
):
    runs = {}
    with replay_world.second_database(db_url, tmp_path) as other_url:
        other = make_engine(other_url)
        try:
            for name, eng in (("incremental", engine), ("full", other)):
                w = build(eng)
                first = evaluate(eng, CONFIG, as_of=T0)
                assert first.scoring.everyone and first.signals.evaluated == 9
                after_t0(w, t1 - timedelta(minutes=10))
                runs[name] = (
                    evaluate(eng, CONFIG, as_of=t1, full=name == "full"),
                    snapshot(eng),
                    _open(snapshot(eng)),
                )
        finally:
            other.dispose()
    (inc, inc_snap, inc_open), (full, full_snap, _) = runs["incremental"], runs["full"]
    assert inc_snap == full_snap
    # Only what changed was read: the accounts with new data, the heartbeat's and the
    # accounts whose thresholds the clock crossed (none before 06:00) or whose open
    # expansion episode it may end (expander).
    assert sorted(inc.scoring.rescored) == ["breaker", "fixer", "zz-heartbeat"]
    clocked = 4 if t1 >= SIX else 1
    assert inc.signals.evaluated == 3 + clocked
    assert inc.signals.accounts == 9  # the others are covered: unchanged since T0
    assert full.signals.evaluated == 9
    # Not vacuous: the clock and the new data both changed episodes.
    assert ("breaker", "health_degradation") in inc_open
    assert ("fixer", "health_degradation") not in inc_open
    assert ("steady", "abandonment") in inc_open
    flipped = {
        ("newbie", "onboarding_no_first_sync"),
        ("ramp", "onboarding_low_activation"),
    }
    gone = {("graduate", "onboarding_low_activation"), ("expander", "integration_activated")}
    if t1 >= SIX:
        assert flipped <= inc_open and not gone & inc_open
    else:
        assert not flipped & inc_open and gone <= inc_open


def test_the_clock_driven_accounts_are_those_whose_thresholds_lie_between_two_runs(
    engine: Engine,
):
    build(engine)
    evaluate(engine, CONFIG, as_of=T0)  # expander's expansion episode opens
    with engine.connect() as conn:
        # forward: onboarding thresholds crossed, and the open expansion episodes
        assert time_driven_accounts(conn, CONFIG, T0, at(D, 5.0)) == {"expander"}
        assert time_driven_accounts(conn, CONFIG, T0, at(D, 7.0)) == {
            "newbie",
            "ramp",
            "graduate",
            "expander",
        }
        # backward (a run at an earlier moment of the same day): activations whose
        # window ends in between
        assert time_driven_accounts(conn, CONFIG, at(D, 5.0), T0) == set()
        assert time_driven_accounts(conn, CONFIG, at(D, 7.0), T0) == {
            "newbie",
            "ramp",
            "graduate",
            "expander",
        }


def test_after_a_run_that_scored_without_signals_the_next_evaluation_covers_everyone(
    engine: Engine,
):
    w = build(engine)
    evaluate(engine, CONFIG, as_of=T0)
    after_t0(w, T0 + timedelta(minutes=50))
    # Scoring alone rescored breaker and fixer: nobody evaluated their signals.
    score_accounts(engine, CONFIG, as_of=T0 + timedelta(hours=1))
    done = evaluate(engine, CONFIG, as_of=T0 + timedelta(hours=2))
    assert done.scoring.rescored == []
    assert done.signals.evaluated == 9
    assert ("breaker", "health_degradation") in _open(snapshot(engine))
    # ... and the one after it may skip them again (all but expander, whose open
    # expansion episode the clock may end).
    again = evaluate(engine, CONFIG, as_of=T0 + timedelta(hours=3))
    assert again.signals.evaluated == 1


def test_while_the_feed_is_stale_and_when_it_recovers_every_account_is_evaluated(
    engine: Engine,
):
    w = build(engine)
    evaluate(engine, CONFIG, as_of=T0)
    quiet = T0 + timedelta(hours=7)  # 7 hours without events: the guard opens
    stale = evaluate(engine, CONFIG, as_of=quiet)
    assert stale.signals.feed_stale and stale.signals.evaluated == 9
    w.heartbeat(quiet + timedelta(minutes=30))
    back = evaluate(engine, CONFIG, as_of=quiet + timedelta(minutes=40))
    assert not back.signals.feed_stale and back.signals.evaluated == 9
    calm = evaluate(engine, CONFIG, as_of=quiet + timedelta(minutes=50))
    assert calm.signals.evaluated == 0


def test_a_run_is_written_whole_or_not_at_all(engine: Engine):
    """Scores and signals share one transaction: a failure in the rules leaves no
    scoring run behind, so the next run rescores the same accounts."""
    build(engine)
    broken = CONFIG.model_copy(
        update={
            "signals": CONFIG.signals.model_copy(
                update={
                    "onboarding": CONFIG.signals.onboarding.model_copy(
                        update={"min_active": "three"}
                    )
                }
            )
        }
    )
    with pytest.raises(TypeError):
        evaluate(engine, broken, as_of=T0)
    with engine.connect() as conn:
        assert conn.execute(select(AccountScore)).first() is None
    assert evaluate(engine, CONFIG, as_of=T0).scoring.everyone
