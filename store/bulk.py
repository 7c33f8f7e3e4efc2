"""Fast bulk writes for ingest's hot path, straight through the DBAPI cursor.

SQLAlchemy's per-value type processing costs more than the database itself at
50,000 events a second, so the few statements ingest runs per batch are written
here as plain SQL that SQLite and PostgreSQL both accept (ON CONFLICT, RETURNING),
with values already in the storage format SQLAlchemy uses for these columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import chain
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from integration_signals.store.events import ts_formatter

# SQLite and PostgreSQL both cap bound parameters per statement; stay well below.
MAX_PARAMS = 30_000
# PostgreSQL: from this many rows on, writes go through COPY into a temporary table
# (psycopg's C row formatter) instead of arrays, whose text elements psycopg escapes
# in Python one by one: 100,000 scores with their JSON documents took 40 s that way.
COPY_MIN_ROWS = 1_000


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
        if self.pg and len(rows) >= COPY_MIN_ROWS:
            with self._staged(table, columns, rows) as staged:
                self.conn.exec_driver_sql(
                    f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM {staged} "
                    f"ON CONFLICT ({conflict}) DO UPDATE SET {sets}"
                )
            return
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

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Plain inserts: COPY on PostgreSQL, executemany on SQLite."""
        if not rows:
            return
        if self.pg:
            with self._cursor() as cursor:
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            return
        ph = ", ".join([self.ph] * len(columns))
        with self._cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({ph})", rows)

    def update_many(
        self,
        table: str,
        key: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """Set ``columns`` of the row whose ``key`` is the last value of each of ``rows``
        (``(*values, key)``): one UPDATE .. FROM a COPY-filled temporary table on
        PostgreSQL, executemany on SQLite (where each statement is a B-tree seek)."""
        if not rows:
            return
        if self.pg and len(rows) >= COPY_MIN_ROWS:
            with self._staged(table, (*columns, key), rows) as staged:
                sets = ", ".join(f"{col} = {staged}.{col}" for col in columns)
                self.conn.exec_driver_sql(
                    f"UPDATE {table} SET {sets} FROM {staged} WHERE {table}.{key} = {staged}.{key}"
                )
            return
        sets = ", ".join(f"{col} = {self.ph}" for col in columns)
        with self._cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET {sets} WHERE {key} = {self.ph}", rows)

    def insert_select_returning(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        returning: str,
        conflict: str | None = None,
    ) -> list[Any]:
        """PostgreSQL: COPY ``rows`` into a temporary table, then one ``INSERT .. SELECT
        [ON CONFLICT <conflict> DO NOTHING] RETURNING <returning>``: the rows inserted."""
        cols = ", ".join(columns)
        with self._staged(table, columns, rows) as staged:
            sql = f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staged}"
            if conflict:
                sql += f" ON CONFLICT {conflict} DO NOTHING"
            return list(self.conn.exec_driver_sql(f"{sql} RETURNING {returning}"))

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            yield cursor
        finally:
            cursor.close()

    @contextmanager
    def _staged(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> Iterator[str]:
        """PostgreSQL: ``rows`` COPied into a temporary table with ``table``'s column
        types, dropped afterwards; yields its name."""
        name = f"_staged_{table}"
        with self._cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE {name} AS SELECT {', '.join(columns)} FROM {table}"
                " WITH NO DATA"
            )
            with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            yield name
            # (after an error the transaction rolls back, and the table with it)
            cursor.execute(f"DROP TABLE {name}")


def _by_column(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column (PostgreSQL arrays for ``unnest``)."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
