"""Fast bulk writes for ingest's hot path, straight through the DBAPI cursor.

SQLAlchemy's per-value type processing costs more than the database itself at
50,000 events a second, so the few statements ingest runs per batch are written
here as plain SQL that SQLite and PostgreSQL both accept (ON CONFLICT, RETURNING),
with values already in the storage format SQLAlchemy uses for these columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import chain
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from integration_signals.store.events import ts_formatter

# SQLite and PostgreSQL both cap bound parameters per statement; stay well below.
MAX_PARAMS = 30_000


class Bulk:
    """Dialect-aware helpers bound to one connection (inside its transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self.ph = "%s" if self.pg else "?"
        self._ts = ts_formatter(self.pg)

    # -- value adapters (the formats SQLAlchemy reads back for these column types)
    def ts(self, value: datetime | None) -> str | None:
        return None if value is None else self._ts(value)

    def json(self, value: Any) -> str | None:
        return None if value is None else orjson.dumps(value).decode()

    # -- statements
    def _unnest(self, table: str, columns: Sequence[str]) -> str:
        """PostgreSQL: ``SELECT * FROM unnest(%s::type[], ...)``, one array per column.

        A handful of parameters instead of one per value: psycopg's client-side query
        parsing of a statement with tens of thousands of placeholders cost more than
        the insert itself."""
        from sqlalchemy.dialects import postgresql
        from sqlmodel import SQLModel

        t = SQLModel.metadata.tables[table]
        dialect = postgresql.dialect()
        types = [t.c[name].type.compile(dialect=dialect) for name in columns]
        return "SELECT * FROM unnest(" + ", ".join(f"%s::{ty}[]" for ty in types) + ")"

    def least(self, a: str, b: str) -> str:
        if self.pg:
            return f"LEAST({a}, {b})"
        return f"min(coalesce({a}, {b}), coalesce({b}, {a}))"

    def greatest(self, a: str, b: str) -> str:
        if self.pg:
            return f"GREATEST({a}, {b})"
        return f"max(coalesce({a}, {b}), coalesce({b}, {a}))"

    def insert_returning(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: str,
        returning: str,
    ) -> list[Any]:
        """Multi-row INSERT .. ON CONFLICT DO NOTHING RETURNING: the keys actually inserted."""
        if not rows:
            return []
        if self.pg:
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) {self._unnest(table, columns)} "
                f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {returning}"
            )
            with self.conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                cursor.execute(sql, _by_column(rows, len(columns)))
                return [r[0] for r in cursor.fetchall()]
        per_stmt = max(1, MAX_PARAMS // len(columns))
        cols = ", ".join(columns)
        one = "(" + ", ".join([self.ph] * len(columns)) + ")"
        out: list[Any] = []
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            for start in range(0, len(rows), per_stmt):
                part = rows[start : start + per_stmt]
                sql = (
                    f"INSERT INTO {table} ({cols}) VALUES {', '.join([one] * len(part))} "
                    f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {returning}"
                )
                params = list(chain.from_iterable(part))
                cursor.execute(sql, params)
                out.extend(r[0] for r in cursor.fetchall())
        finally:
            cursor.close()
        return out

    def upsert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: str,
        updates: dict[str, str],
    ) -> None:
        """executemany of INSERT .. ON CONFLICT DO UPDATE; ``updates`` maps a column to an
        SQL expression over ``{table}.col`` and ``excluded.col``."""
        if not rows:
            return
        sets = ", ".join(f"{col} = {expr}" for col, expr in updates.items())
        if self.pg:
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) {self._unnest(table, columns)} "
                f"ON CONFLICT ({conflict}) DO UPDATE SET {sets}"
            )
            with self.conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                cursor.execute(sql, _by_column(rows, len(columns)))
            return
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join([self.ph] * len(columns))}) "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {sets}"
        )
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()


def _by_column(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column (PostgreSQL arrays for ``unnest``)."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
