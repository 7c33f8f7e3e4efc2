"""Ingest pull from a SQL source: any SQLAlchemy URL plus a query, read incrementally.

The configured query must return event columns (``event_id``, ``type``, ``occurred_at``,
``account_id``, ``integration``, ...; any other column lands in ``properties``). Rows
are read in ``cursor_column`` order, only those past the saved cursor, and go through
the one ingest path (``Ingestor``), a batch per transaction. After each committed batch
the cursor moves to the last value whose rows are all in — never into the middle of a
run of equal values — so a pull killed at any point resumes without losing a row; the
few rows read again are counted once (their ``event_id`` is already stored).

The cursor and running totals live in the ``kv`` table under ``pull:<name>``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import Connection, make_url

from integration_signals.config import Config, Settings
from integration_signals.schedules.exceptions import PullNotConfigured, Stopping
from integration_signals.store.events import KNOWN_FIELDS, RawRecord, as_text
from integration_signals.store.ingest import Ingestor, IngestReport
from integration_signals.store.models import KeyValue
from integration_signals.store.sql import upsert, utcnow


@dataclass
class PullReport:
    rows: int = 0
    batches: int = 0
    cursor: Any = None
    ingest: IngestReport = field(default_factory=IngestReport)

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "batches": self.batches,
            "cursor": _encode_cursor(self.cursor),
            **{k: v for k, v in self.ingest.as_json().items() if k != "sources"},
        }


def is_configured(config: Config, settings: Settings) -> bool:
    return bool(config.schedules.pull.query.strip() and settings.signals_pull_url)


def state_key(config: Config) -> str:
    return f"pull:{config.schedules.pull.name}"


# ---------------------------------------------------------------- cursor values


def _encode_cursor(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return {"kind": "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {"kind": "date", "value": value.isoformat()}
    if isinstance(value, bool):
        return {"kind": "str", "value": str(value)}
    if isinstance(value, int):
        return {"kind": "int", "value": value}
    if isinstance(value, Decimal):
        return {"kind": "decimal", "value": str(value)}
    if isinstance(value, float):
        return {"kind": "float", "value": value}
    return {"kind": "str", "value": str(value)}


def _decode_cursor(data: dict[str, Any] | None) -> Any:
    if not data:
        return None
    kind, value = data["kind"], data["value"]
    if kind == "datetime":
        return datetime.fromisoformat(value)  # keeps the source's naive/aware form
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "decimal":
        return Decimal(value)
    return value


def load_state(engine: Engine, key: str) -> dict[str, Any]:
    t = KeyValue.__table__
    with engine.connect() as conn:
        value = conn.execute(select(t.c.value).where(t.c.key == key)).scalar_one_or_none()
    return dict(value or {})


def _save_state(conn: Connection, key: str, state: dict[str, Any]) -> None:
    upsert(
        conn,
        KeyValue.__table__,
        [{"key": key, "value": state, "updated_at": utcnow()}],
        keys=["key"],
        update=lambda ex: {"value": ex.value, "updated_at": ex.updated_at},
    )


# ---------------------------------------------------------------- rows -> events


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return value


def row_to_event(row: dict[str, Any]) -> dict[str, Any]:
    """A source row as an event object: known columns by name, the rest in properties."""
    event: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in row.items():
        key = str(name).lower()
        value = _plain(value)
        if key == "properties":
            if isinstance(value, str):
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError:
                    pass
            event[key] = value
        elif key in KNOWN_FIELDS:
            event[key] = value
        elif value is not None:
            extra[key] = value
    if extra:
        props = event.get("properties") if isinstance(event.get("properties"), dict) else {}
        event["properties"] = {**extra, **(props or {})}
    return event


def _source_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


def _batches(
    source: Engine, query: str, column: str, cursor: Any, size: int
) -> Iterator[list[dict[str, Any]]]:
    quoted = source.dialect.identifier_preparer.quote(column)
    inner = f"SELECT * FROM ({query.strip().rstrip(';')}) signals_src"
    with source.connect() as conn:
        columns = list(conn.execute(text(inner + " WHERE 1 = 0")).keys())
    if column not in columns:
        raise PullNotConfigured(
            f"the pull query returns no column {column!r}; set [schedules.pull] "
            "cursor_column to one of: " + ", ".join(columns)
        )
    sql, params = inner, {}
    if cursor is not None:
        sql += f" WHERE signals_src.{quoted} > :cursor"
        params["cursor"] = cursor
    sql += f" ORDER BY signals_src.{quoted}"
    with source.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=size).execute(
            text(sql), params
        )
        for part in result.partitions(size):
            yield [dict(r._mapping) for r in part]


def pull_once(
    engine: Engine,
    config: Config,
    settings: Settings,
    *,
    now: datetime | None = None,
    stopping: threading.Event | None = None,
) -> PullReport:
    """Ingest every source row past the saved cursor; return what happened."""
    cfg = config.schedules.pull
    if not is_configured(config, settings):
        raise PullNotConfigured(
            "the ingest pull needs SIGNALS_PULL_URL (a SQLAlchemy URL) and "
            "[schedules.pull] query in the config"
        )
    assert settings.signals_pull_url is not None
    key = state_key(config)
    state = load_state(engine, key)
    cursor = _decode_cursor(state.get("cursor"))
    report = PullReport(cursor=cursor)
    ingestor = Ingestor(engine, config, now=now or utcnow())
    ingestor.report = report.ingest
    source = _source_engine(settings.signals_pull_url.get_secret_value())
    column = cfg.cursor_column
    try:
        pending: list[dict[str, Any]] = []  # rows sharing the batch's last cursor value
        for rows in _batches(source, cfg.query, column, cursor, cfg.batch_size):
            records = []
            for row in rows:
                report.rows += 1
                event = row_to_event(row)
                records.append(RawRecord(report.rows, _raw(event), event))
            # The cursor may only pass values all of whose rows are in: the batch's last
            # value may continue in the next batch, so it stops just before that value.
            last = rows[-1][column]
            pending = [r for r in rows if r[column] == last]
            complete = [r[column] for r in rows if r[column] != last]
            if complete:
                report.cursor = complete[-1]
            before = (report.ingest.accepted, report.ingest.duplicates, report.ingest.quarantined)

            def save(conn: Connection, before: tuple[int, int, int] = before) -> None:
                state.update(_advance(state, report, before))
                _save_state(conn, key, state)

            ingestor.before_commit = save
            ingestor.ingest(records, source=f"pull:{cfg.name}")
            report.batches += 1
            if stopping is not None and stopping.is_set():
                raise Stopping(
                    f"stopped after {report.rows:,} rows; the next pull continues from the cursor"
                )
        if pending:
            report.cursor = pending[-1][column]
            state.update(_advance(state, report, None))
            with engine.begin() as conn:
                _save_state(conn, key, state)
    finally:
        source.dispose()
        report.ingest.sources = sorted(set(report.ingest.sources))
    return report


def _raw(event: dict[str, Any]) -> str:
    return as_text(event)


def _advance(
    state: dict[str, Any], report: PullReport, before: tuple[int, int, int] | None
) -> dict[str, Any]:
    """The state after a batch: its cursor and the running totals."""
    state = dict(state)
    if before is not None:
        ing = report.ingest
        state["accepted"] = state.get("accepted", 0) + ing.accepted - before[0]
        state["duplicates"] = state.get("duplicates", 0) + ing.duplicates - before[1]
        state["quarantined"] = state.get("quarantined", 0) + ing.quarantined - before[2]
    state["cursor"] = _encode_cursor(report.cursor)
    state["pulled_at"] = utcnow().isoformat()
    return state
