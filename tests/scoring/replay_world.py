"""Sixty days of events with a degradation that heals, an abandonment that comes back
(and leaves again), and an API-limit climb; plus helpers that read what an evaluation
left in the store, at day granularity, for comparing two stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from integration_signals.store.models import AccountScore, ScoreHistory, Signal
from integration_signals.store.sql import as_utc
from tests.databases import private_pg_database

START = date(2026, 9, 1)
DAYS = 60


def accounts() -> list[dict[str, Any]]:
    created = datetime(2025, 6, 1, tzinfo=UTC).isoformat()
    base = {"segment": "enterprise", "plan": "enterprise", "mrr": 5000, "created_at": created}
    return [
        {"account_id": "deg", "name": "Degrading Co", "csm": "csm@x", "owner": "ae@x", **base},
        {"account_id": "aband", "name": "Away Inc", "csm": "csm@x", "owner": "ae@x", **base},
        {
            "account_id": "api",
            "name": "Climb Ltd",
            "csm": "csm@x",
            "owner": "ae@x",
            "api_limit_daily": 1000,
            **base,
        },
    ]


def _at(day: date, hour: float) -> str:
    moment = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)
    return moment.isoformat().replace("+00:00", "Z")


def events_by_day(start: date = START, days: int = DAYS) -> dict[date, list[dict[str, Any]]]:
    out: dict[date, list[dict[str, Any]]] = {}
    n = 0

    def add(
        bucket: list[dict[str, Any]],
        account: str,
        integration: str,
        etype: str,
        when: str,
        **kw: Any,
    ) -> None:
        nonlocal n
        n += 1
        bucket.append(
            {
                "event_id": f"r-{n:06d}",
                "type": etype,
                "occurred_at": when,
                "account_id": account,
                "integration": integration,
                "connection_id": f"{account}-{integration}",
                **kw,
            }
        )

    def sync(bucket, account, integration, day, hour, ok=True, api_calls=20):  # type: ignore[no-untyped-def]
        if ok:
            add(
                bucket,
                account,
                integration,
                "sync.succeeded",
                _at(day, hour),
                records=500,
                bytes=50_000,
                api_calls=api_calls,
                trigger="scheduled",
            )
        else:
            add(bucket, account, integration, "sync.failed", _at(day, hour), error="TIMEOUT")

    for d in range(days):
        day = start + timedelta(days=d)
        bucket: list[dict[str, Any]] = []
        if d == 0:
            for account, integration in (
                ("deg", "zendesk"),
                ("deg", "slack"),
                ("aband", "snowflake"),
                ("aband", "hubspot"),
                ("api", "salesforce"),
            ):
                add(bucket, account, integration, "integration.installed", _at(day, 1))
        # degradation: 6 of 10 syncs fail on days 20-27, then it heals
        for k in range(10):
            sync(bucket, "deg", "zendesk", day, 2 + k, ok=not (20 <= d <= 27 and k < 6))
        # a late sync every day keeps the feed fresh at the end of the day
        sync(bucket, "deg", "slack", day, 23.5)
        # abandonment: used on days 0-9, back on days 30-39, gone again after
        if d < 10 or 30 <= d < 40:
            sync(bucket, "aband", "snowflake", day, 5)
        sync(bucket, "aband", "hubspot", day, 6)
        # API-limit climb: calls per day from 300 towards the limit of 1,000
        add(bucket, "api", "salesforce", "api.calls", _at(day, 12), api_calls=300 + 12 * d)
        sync(bucket, "api", "salesforce", day, 7, api_calls=0)
        out[day] = bucket
    return out


# ---------------------------------------------------------------- reading a store


def episodes(engine: Engine) -> list[tuple[Any, ...]]:
    """(account, kind, connection, fired day, resolved day) of every episode."""
    s = Signal.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.c.account_id, s.c.kind, s.c.subject, s.c.fired_at, s.c.resolved_at)
        ).all()
    return sorted(
        (r[0], r[1], r[2], as_utc(r[3]).date(), r[4] and as_utc(r[4]).date()) for r in rows
    )


def score_days(engine: Engine) -> dict[tuple[str, date], tuple[int, str]]:
    """Each account's score at the end of each day its history has a row for."""
    h = ScoreHistory.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(h.c.account_id, h.c.as_of, h.c.score, h.c.band).order_by(h.c.as_of, h.c.id)
        ).all()
    out: dict[tuple[str, date], tuple[int, str]] = {}
    for aid, at, value, band in rows:
        out[(aid, as_utc(at).date())] = (value, band)
    return out


def segments(engine: Engine) -> dict[str, list[str]]:
    sc = AccountScore.__table__
    with engine.connect() as conn:
        return {
            r[0]: list(r[1] or []) for r in conn.execute(select(sc.c.account_id, sc.c.segments))
        }


def final_scores(engine: Engine) -> dict[str, tuple[Any, ...]]:
    sc = AccountScore.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                sc.c.account_id,
                sc.c.score,
                sc.c.band,
                sc.c.stage,
                sc.c.inputs_hash,
                sc.c.segments,
                sc.c.as_of,
            )
        ).all()
    return {r[0]: (r[1], r[2], r[3], r[4], list(r[5] or []), as_utc(r[6]).date()) for r in rows}


@contextmanager
def second_database(first_url: str, tmp_path: Any) -> Iterator[str]:
    """Another private, empty database beside the test's: a second SQLite file, or a
    second PostgreSQL database created (and dropped) like tests/conftest.py does."""
    if first_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'second.db'}"
        return
    with private_pg_database(
        os.environ["SIGNALS_TEST_DATABASE_URL"], prefix="signals_test_b"
    ) as url:
        yield url
