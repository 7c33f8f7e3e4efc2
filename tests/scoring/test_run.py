"""Incremental scoring rescores only what can have changed and equals a full run."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, update

from integration_signals.scoring.run import score_accounts
from integration_signals.store.engine import make_engine
from integration_signals.store.models import AccountScore, Connection, ScoreHistory
from tests.scoring.builders import CONFIG, NOW, Feed, account, import_accounts

INTEGRATIONS = ("salesforce", "hubspot", "zendesk", "snowflake", "looker")


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    s = AccountScore.__table__
    c = Connection.__table__
    with engine.connect() as conn:
        scores = [
            (
                r.account_id,
                r.score,
                r.band,
                r.stage,
                r.components,
                r.reason,
                r.active_integrations,
                r.percentiles,
                r.config_version,
                r.inputs_hash,
                r.details,
                r.segments,
                r.as_of.date(),
            )
            for r in conn.execute(select(s).order_by(s.c.account_id))
        ]
        states = [
            tuple(r)
            for r in conn.execute(select(c.c.connection_id, c.c.state).order_by(c.c.connection_id))
        ]
    return scores + states


def history_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ScoreHistory)).scalar_one()


def _world(engine: Engine) -> Feed:
    import_accounts(
        engine,
        [account(f"a{i}", ("smb", "mid_market", "enterprise")[i % 3]) for i in range(6)],
    )
    feed = Feed()
    for i in range(6):
        for k, key in enumerate(INTEGRATIONS[: 1 + i % 5]):
            feed.install(f"a{i}", key, 70, custom_fields=i)
            feed.syncs(
                f"a{i}",
                key,
                range(k * 3, 70),
                per_day=1 + i % 2,
                records=200 * (i + 1),
                failures=k % 2,
            )
    feed.ingest(engine)
    return feed


def test_a_second_run_without_changes_rescores_nothing(engine):
    _world(engine)
    first = score_accounts(engine, CONFIG, as_of=NOW)
    assert len(first.rescored) == 6 and first.full
    second = score_accounts(engine, CONFIG, as_of=NOW + timedelta(hours=2))
    assert second.rescored == [] and not second.full
    assert history_count(engine) == 6


def test_only_accounts_with_new_data_are_rescored_and_the_result_equals_a_full_run(engine):
    feed = _world(engine)
    score_accounts(engine, CONFIG, as_of=NOW)
    feed.syncs("a2", "salesforce", [0], failures=9)  # a2 gets worse today
    feed.ingest(engine, now=NOW + timedelta(hours=1))
    report = score_accounts(engine, CONFIG, as_of=NOW + timedelta(hours=2))
    assert report.rescored == ["a2"]
    assert report.changed == ["a2"]
    incremental = snapshot(engine)
    assert score_accounts(engine, CONFIG, as_of=NOW + timedelta(hours=2), full=True).changed == []
    assert snapshot(engine) == incremental
    assert history_count(engine) == 7  # one row per account per run that changed it


def test_time_alone_moves_windows_so_a_new_day_rescores_everyone(engine):
    _world(engine)
    score_accounts(engine, CONFIG, as_of=NOW)
    later = NOW + timedelta(days=9)  # every connection goes idle by then
    report = score_accounts(engine, CONFIG, as_of=later)
    assert len(report.rescored) == 6
    incremental = snapshot(engine)
    score_accounts(engine, CONFIG, as_of=later, full=True)
    assert snapshot(engine) == incremental
    with engine.connect() as conn:
        states = set(conn.execute(select(Connection.state)).scalars())
    assert states == {"idle"}


def test_explicit_account_ids_rescore_exactly_those(engine):
    _world(engine)
    score_accounts(engine, CONFIG, as_of=NOW)
    report = score_accounts(engine, CONFIG, as_of=NOW, account_ids=["a1", "a4"])
    assert report.rescored == ["a1", "a4"] and report.changed == []


def test_segments_written_by_signals_are_never_overwritten(engine):
    feed = _world(engine)
    score_accounts(engine, CONFIG, as_of=NOW)
    t = AccountScore.__table__
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.account_id == "a1").values(segments=["at-risk"]))
    feed.syncs("a1", "salesforce", [0], failures=5)
    feed.ingest(engine, now=NOW + timedelta(hours=1))
    assert score_accounts(engine, CONFIG, as_of=NOW, full=True).changed == ["a1"]
    with engine.connect() as conn:
        assert conn.execute(select(t.c.segments).where(t.c.account_id == "a1")).scalar_one() == [
            "at-risk"
        ]
        assert conn.execute(select(t.c.segments).where(t.c.account_id == "a0")).scalar_one() == []


def _fresh(db_url: str) -> Engine:
    """A new empty database per hypothesis example."""
    if db_url.startswith("sqlite"):
        path = Path(tempfile.mkdtemp()) / "h.db"
        return make_engine(f"sqlite:///{path}")
    from tests.conftest import _truncate_all

    _truncate_all(db_url)
    return make_engine(db_url)


day_events = st.lists(
    st.tuples(
        st.integers(0, 3),  # account
        st.sampled_from(INTEGRATIONS),
        st.integers(0, 40),  # days ago
        st.integers(0, 3),  # successes
        st.integers(0, 2),  # failures
        st.sampled_from(["scheduled", "manual"]),
    ),
    min_size=1,
    max_size=40,
)
lifecycle = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.sampled_from(INTEGRATIONS),
        st.sampled_from(
            ["integration.installed", "integration.uninstalled", "auth.expired", "auth.restored"]
        ),
        st.integers(0, 40),
    ),
    max_size=8,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=day_events, second=day_events, life=lifecycle, shift=st.integers(0, 2))
def test_incremental_equals_full_on_generated_data(db_url, first, second, life, shift):
    engine = _fresh(db_url)
    try:
        import_accounts(
            engine,
            [
                account(f"h{i}", ("smb", "enterprise")[i % 2], tenure_days=30 + 40 * i)
                for i in range(4)
            ],
        )
        feed = Feed()
        for batch, ingest_at in ((first, NOW), (second, NOW + timedelta(hours=1))):
            for a, key, ago, ok, bad, trigger in batch:
                feed.syncs(
                    f"h{a}", key, [ago], per_day=ok, failures=bad, trigger=trigger, records=10 + ago
                )
            if batch is first:
                for a, key, etype, ago in life:
                    feed.add(f"h{a}", key, etype, feed.at(ago, 5))
            feed.ingest(engine, now=ingest_at)
            score_accounts(engine, CONFIG, as_of=NOW + timedelta(days=shift, hours=2))
        incremental = snapshot(engine)
        score_accounts(engine, CONFIG, as_of=NOW + timedelta(days=shift, hours=2), full=True)
        assert snapshot(engine) == incremental
    finally:
        engine.dispose()
