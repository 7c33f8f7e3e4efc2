"""When the event feed last delivered something, kept cheaply for the feed_stale guard.

Ingest moves one ``kv`` row forward per batch that stored new events (instead of an
index on ``events.received_at``, which would cost every insert a B-tree update). Asked
about a moment before the marker — a backdated run — the answer comes from the events
themselves.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from integration_signals.store.models import Connection as ConnectionRow
from integration_signals.store.models import Event, KeyValue
from integration_signals.store.sql import as_utc, greatest, upsert

FEED_KEY = "feed.last_received_at"


def mark_received(conn: Connection, at: datetime) -> None:
    """Record that events were received at ``at`` (never moves the marker back)."""
    t = KeyValue.__table__
    upsert(
        conn,
        t,
        [{"key": FEED_KEY, "value": {"source": "ingest"}, "updated_at": at}],
        keys=["key"],
        update=lambda ex: {"updated_at": greatest(conn, t.c.updated_at, ex.updated_at)},
    )


def last_event_seen(conn: Connection, as_of: datetime) -> datetime | None:
    """The latest moment at or before ``as_of`` at which an event was received, or at
    which a stored event occurred (so a backfill of history counts as a feed at the
    time it describes). None when the store holds no event by then."""
    kv = KeyValue.__table__
    marker = as_utc(
        conn.execute(select(kv.c.updated_at).where(kv.c.key == FEED_KEY)).scalar_one_or_none()
    )
    c = ConnectionRow.__table__
    newest_occurred = as_utc(conn.execute(select(func.max(c.c.last_event_at))).scalar_one())
    if marker is not None and marker <= as_of:
        # Every stored event was received by the marker; an event dated after it (clock
        # skew) adds nothing the marker does not already say.
        if newest_occurred is not None and marker < newest_occurred <= as_of:
            return newest_occurred
        return marker
    e = Event.__table__
    received, occurred = conn.execute(
        select(
            func.max(e.c.received_at).filter(e.c.received_at <= as_of),
            func.max(e.c.occurred_at).filter(e.c.occurred_at <= as_of),
        )
    ).one()
    seen = [t for t in (as_utc(received), as_utc(occurred)) if t is not None]
    return max(seen) if seen else None
