"""Bulk writes: the same rows land whichever path writes them (arrays or executemany
for a few rows, COPY through a temporary table on PostgreSQL for many)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from integration_signals.store.bulk import COPY_MIN_ROWS, Bulk
from integration_signals.store.models import AccountScore, ScoreHistory

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SIZES = pytest.mark.parametrize(
    "n", [3, COPY_MIN_ROWS + 5], ids=["a few rows", "more than the COPY threshold"]
)
COLUMNS = (
    "account_id",
    "as_of",
    "scored_at",
    "score",
    "band",
    "stage",
    "active_integrations",
    "components",
    "segments",
)


def _rows(bulk: Bulk, n: int, score: int) -> list[tuple]:
    return [
        (
            f"acct-{i:05d}",
            bulk.ts(AT),
            bulk.ts(AT),
            score,
            "watch",
            "scored",
            0,
            bulk.json({"note": 'quote " tab \t backslash \\ newline \n', "i": i}),
            "[]",
        )
        for i in range(n)
    ]


def _scores(engine: Engine) -> dict[str, tuple]:
    s = AccountScore.__table__
    with engine.connect() as conn:
        return {
            r.account_id: (r.score, r.components, r.segments, r.as_of)
            for r in conn.execute(select(s))
        }


@SIZES
def test_upsert_many_inserts_then_updates_every_row(engine: Engine, n: int) -> None:
    updates = {c: f"excluded.{c}" for c in ("score", "components")}
    with engine.begin() as conn:
        bulk = Bulk(conn)
        bulk.upsert_many(
            "account_scores", COLUMNS, _rows(bulk, n, 10), conflict="account_id", updates=updates
        )
    with engine.begin() as conn:
        bulk = Bulk(conn)
        bulk.upsert_many(
            "account_scores", COLUMNS, _rows(bulk, n, 20), conflict="account_id", updates=updates
        )
    stored = _scores(engine)
    assert len(stored) == n
    score, components, segments, as_of = stored["acct-00002"]
    assert score == 20
    assert components == {"note": 'quote " tab \t backslash \\ newline \n', "i": 2}
    assert segments == []
    assert as_of.replace(tzinfo=UTC) == AT


@SIZES
def test_update_many_sets_the_columns_of_the_keyed_rows_only(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        bulk = Bulk(conn)
        bulk.insert_many("account_scores", COLUMNS, _rows(bulk, n + 2, 10))
    with engine.begin() as conn:
        bulk = Bulk(conn)
        changes = [(bulk.json(["at-risk"]), 30 + i, f"acct-{i:05d}") for i in range(n)]
        bulk.update_many("account_scores", "account_id", ("segments", "score"), changes)
    stored = _scores(engine)
    assert stored["acct-00001"][:1] == (31,) and stored["acct-00001"][2] == ["at-risk"]
    untouched = f"acct-{n + 1:05d}"
    assert stored[untouched][0] == 10 and stored[untouched][2] == []


def test_insert_many_copies_rows_with_nulls(engine: Engine) -> None:
    columns = ("account_id", "as_of", "scored_at", "score", "band", "stage", "components")
    with engine.begin() as conn:
        bulk = Bulk(conn)
        rows = [
            (f"acct-{i}", bulk.ts(AT), bulk.ts(AT), i, "healthy", "scored", None)
            for i in range(COPY_MIN_ROWS + 1)
        ]
        bulk.insert_many("score_history", columns, rows)
    h = ScoreHistory.__table__
    with engine.connect() as conn:
        got = conn.execute(
            select(h.c.score, h.c.components).where(h.c.account_id == "acct-7")
        ).one()
    assert tuple(got) == (7, None)
