"""Small SQL helpers that render the same meaning on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Aware UTC; a naive value is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def insert_for(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT construct (the one with ON CONFLICT support)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def least(conn: Connection, a: ColumnElement, b: ColumnElement) -> ColumnElement:
    """The smaller of two values, ignoring NULLs (PostgreSQL LEAST semantics)."""
    if conn.dialect.name == "postgresql":
        return func.least(a, b)
    return func.min(func.coalesce(a, b), func.coalesce(b, a))


def greatest(conn: Connection, a: ColumnElement, b: ColumnElement) -> ColumnElement:
    """The larger of two values, ignoring NULLs (PostgreSQL GREATEST semantics)."""
    if conn.dialect.name == "postgresql":
        return func.greatest(a, b)
    return func.max(func.coalesce(a, b), func.coalesce(b, a))


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Iterable[str],
    update: Mapping[str, Any] | None = None,
) -> None:
    """INSERT rows; on a key conflict apply ``update`` (a dict of column -> expression
    over ``table`` and ``excluded``), or do nothing when ``update`` is None.

    ``update`` may be a callable ``(excluded) -> dict`` so expressions can name the
    incoming row.
    """
    if not rows:
        return
    stmt = insert_for(conn, table)
    if update is None:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    else:
        sets = update(stmt.excluded) if callable(update) else update
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=sets)
    conn.execute(stmt, list(rows))


def chunked(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
