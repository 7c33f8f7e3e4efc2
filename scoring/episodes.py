"""Signal episodes as of a moment: the one query every view asks.

An episode is open at T when it fired at or before T and was not resolved by T
(``resolved_at`` empty or after T); it was recently resolved at T when it resolved in
the ``recent_days`` up to T. ``signals health``, ``signals signals``, the Slack card
and the web pages all read episodes through ``episodes_as_of``, so two views of one
moment never disagree, whatever was evaluated after T. Texts are computed as of T:
``details_as_of`` moves what time alone changes (an abandonment's idle days) to T.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.engine import Connection

from integration_signals.store.models import Signal
from integration_signals.store.sql import as_utc, chunked


def open_at(as_of: datetime, table: Any = None) -> ColumnElement[bool]:
    """The SQL condition "this episode is open at ``as_of``" (for counts and joins)."""
    s = table if table is not None else Signal.__table__
    return and_(s.c.fired_at <= as_of, or_(s.c.resolved_at.is_(None), s.c.resolved_at > as_of))


def details_as_of(kind: str, details: dict[str, Any] | None, as_of: datetime) -> dict[str, Any]:
    """An episode's details with what time alone changes moved to ``as_of``."""
    out = dict(details or {})
    if kind == "abandonment" and out.get("last_usage_day"):
        last = date.fromisoformat(out["last_usage_day"])
        out["idle_days"] = max((as_of.date() - last).days, 0)
    return out


def episodes_as_of(
    conn: Connection,
    as_of: datetime,
    *,
    account_ids: Iterable[str] | None = None,
    recent_days: int = 0,
) -> list[dict[str, Any]]:
    """Episodes open at ``as_of``, and with ``recent_days`` those resolved in the
    ``recent_days`` days up to it; newest fired first. Each carries ``status`` and
    ``resolved_at`` as they were at ``as_of`` and its details as of then."""
    s = Signal.__table__
    since = as_of - timedelta(days=recent_days)
    visible = open_at(as_of, s)
    if recent_days > 0:
        visible = or_(visible, and_(s.c.resolved_at > since, s.c.resolved_at <= as_of))
    stmt = select(
        s.c.id, s.c.account_id, s.c.kind, s.c.subject, s.c.fired_at, s.c.resolved_at, s.c.details
    ).where(visible)
    rows: list[Any] = []
    if account_ids is None:
        rows = list(conn.execute(stmt))
    else:
        for part in chunked(sorted(set(account_ids)), 500):
            rows.extend(conn.execute(stmt.where(s.c.account_id.in_(part))))
    out = []
    for r in rows:
        fired, resolved = as_utc(r.fired_at), as_utc(r.resolved_at)
        if resolved is not None and resolved > as_of:
            resolved = None
        out.append(
            {
                "id": r.id,
                "account_id": r.account_id,
                "kind": r.kind,
                "subject": r.subject,
                "status": "open" if resolved is None else "resolved",
                "fired_at": fired,
                "resolved_at": resolved,
                "details": details_as_of(r.kind, r.details, as_of),
            }
        )
    out.sort(key=lambda e: (e["fired_at"], e["id"]), reverse=True)
    return out
