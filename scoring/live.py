"""What changed since a moment: the accounts rescored after a cursor, with what an open
page shows of them (score, band, reason, segments, open signals). The dashboard polls
this to update open pages without a reload."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from integration_signals.store.models import AccountScore, Signal
from integration_signals.store.sql import as_utc, chunked

# A scoring run stamps scored_at when it starts and commits later: rows up to this much
# older than the cursor are sent again (patching a page twice is harmless).
OVERLAP = timedelta(seconds=60)
MAX_CHANGES = 500


def score_changes(
    engine: Engine,
    *,
    since: datetime,
    now: datetime,
    account_ids: Sequence[str] | None = None,
    limit: int = MAX_CHANGES,
) -> dict[str, Any]:
    """Accounts (all, or only ``account_ids``) rescored at or after ``since`` - OVERLAP,
    newest first, at most ``limit``; ``cursor`` is what to ask with next time."""
    s, g = AccountScore.__table__, Signal.__table__
    start = as_utc(since) - OVERLAP  # type: ignore[operator]
    stmt = (
        select(s.c.account_id, s.c.score, s.c.band, s.c.reason, s.c.segments, s.c.scored_at)
        .where(s.c.scored_at >= start)
        .order_by(s.c.scored_at.desc(), s.c.account_id)
        .limit(limit)
    )
    ids = list(dict.fromkeys(account_ids)) if account_ids is not None else None
    with engine.connect() as conn:
        rows: list[Any] = []
        if ids is None:
            rows = list(conn.execute(stmt))
        else:
            for part in chunked(ids, 500):
                rows.extend(conn.execute(stmt.where(s.c.account_id.in_(part))))
        changed = [r.account_id for r in rows]
        counts: dict[str, int] = {}
        for part in chunked(changed, 500):
            counts.update(
                conn.execute(
                    select(g.c.account_id, func.count())
                    .where(g.c.account_id.in_(part), g.c.status == "open")
                    .group_by(g.c.account_id)
                ).all()
            )
    changes = [
        {
            "account_id": r.account_id,
            "score": r.score,
            "band": r.band,
            "reason": r.reason,
            "segments": r.segments or [],
            "open_signals": counts.get(r.account_id, 0),
            "scored_at": as_utc(r.scored_at),
        }
        for r in rows[:limit]
    ]
    newest = max((c["scored_at"] for c in changes), default=None)
    cursor = max(as_utc(since), newest) if newest else as_utc(since)  # type: ignore[type-var]
    return {"since": as_utc(since), "cursor": min(cursor, now), "changes": changes}
