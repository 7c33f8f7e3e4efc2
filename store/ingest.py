"""Event ingest: one code path for files, the HTTP API and SQL pulls.

Every input record is either accepted (stored once, folded into rollups and
connection facts), a duplicate (its ``event_id`` is already stored) or quarantined
(kept verbatim with its reason and line number). Nothing is dropped silently and
one bad record never stops the rest. Each batch commits in one transaction, so a
killed import, run again, ends with the same totals.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, select

from integration_signals.settings import Config
from store.bulk import Bulk
from store.feed import mark_received
from store.models import Account, Integration, Quarantine
from store.sql import chunked, upsert, utcnow

EVENT_TYPES = frozenset(
    {
        "integration.setup_started",
        "integration.installed",
        "integration.setup_failed",
        "integration.configured",
        "sync.succeeded",
        "sync.failed",
        "api.calls",
        "auth.expired",
        "auth.restored",
        "integration.uninstalled",
    }
)
_USAGE_TYPES = frozenset({"sync.succeeded", "sync.failed", "api.calls"})
TRIGGERS = frozenset({"scheduled", "webhook", "manual"})
COUNT_FIELDS = ("records", "bytes", "api_calls")
KNOWN_FIELDS = frozenset(
    {
        "event_id",
        "type",
        "occurred_at",
        "account_id",
        "integration",
        "connection_id",
        "records",
        "bytes",
        "api_calls",
        "trigger",
        "error",
        "properties",
    }
)
MAX_ID_LENGTH = 256
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\d{4}-\d\d-\d\dT\S+")
MAX_COUNT = 2**62


class Rejected(ValueError):
    """A record breaks a rule of the data contract; the message is the reason."""


@dataclass(slots=True)
class RawRecord:
    """One input record: its position, the verbatim text, and (if parsed) the object."""

    line_no: int
    raw: str
    obj: Any = None
    error: str | None = None  # set when the text could not be parsed at all


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    sources: list[str] = field(default_factory=list)
    new_accounts: list[str] = field(default_factory=list)
    new_integrations: list[str] = field(default_factory=list)
    touched_accounts: set[str] = field(default_factory=set)
    reasons: Counter[str] = field(default_factory=Counter)
    quarantine_samples: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "sources": self.sources,
            "new_accounts": len(self.new_accounts),
            "new_integrations": sorted(self.new_integrations),
            "accounts_touched": len(self.touched_accounts),
            "quarantine_reasons": dict(self.reasons.most_common()),
            "quarantine_samples": self.quarantine_samples,
        }


# ---------------------------------------------------------------- validation


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        raise Rejected("occurred_at must be an RFC 3339 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(f"occurred_at {value[:40]!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _count(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None or (type(value) is int and 0 <= value <= MAX_COUNT):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise Rejected(f"{name} must be a non-negative integer, got {str(value)[:40]!r}")
    if value < 0 or value > MAX_COUNT:
        raise Rejected(f"{name} must be a non-negative integer, got {value}")
    return value


def _ident(obj: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = obj.get(name)
    if (
        type(value) is str
        and 0 < len(value) <= MAX_ID_LENGTH
        and not (value[0].isspace() or value[-1].isspace())
    ):
        return value  # the common case, cheaply
    if value is None or value == "":
        if required:
            raise Rejected(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Rejected(f"{name} must be a string")
    text = str(value).strip()
    if not text:
        if required:
            raise Rejected(f"{name} is required")
        return None
    if len(text) > MAX_ID_LENGTH:
        raise Rejected(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return text


def validate_event(obj: Any, *, now: datetime, max_skew: timedelta) -> dict[str, Any]:
    """Check one event object against the data contract; return the row to store."""
    if not isinstance(obj, dict):
        raise Rejected("not a JSON object")
    event_id = _ident(obj, "event_id")
    etype = obj.get("type")
    if etype is None or etype == "":
        raise Rejected("type is required")
    if type(etype) is not str or etype not in EVENT_TYPES:
        raise Rejected(f"type {str(etype)[:60]!r} is not a known event type")
    if obj.get("occurred_at") in (None, ""):
        raise Rejected("occurred_at is required")
    occurred_at = _parse_time(obj["occurred_at"])
    if occurred_at > now + max_skew:
        raise Rejected(
            f"occurred_at {obj['occurred_at']} is more than {max_skew.total_seconds() / 3600:g}h"
            " in the future (clock skew)"
        )
    account_id = _ident(obj, "account_id")
    integration = _ident(obj, "integration")
    assert integration is not None
    if not integration.islower():
        integration = integration.lower()
    connection_id = _ident(obj, "connection_id", required=False) or f"{account_id}:{integration}"
    trigger = obj.get("trigger")
    if trigger is not None and (type(trigger) is not str or trigger not in TRIGGERS):
        raise Rejected(f"trigger {str(trigger)[:40]!r} must be scheduled, webhook or manual")
    error = obj.get("error")
    if error is not None and not isinstance(error, str):
        error = orjson.dumps(error).decode()
    props = obj.get("properties")
    if props is not None and not isinstance(props, dict):
        raise Rejected("properties must be a JSON object")
    return {
        "event_id": event_id,
        "type": etype,
        "occurred_at": occurred_at,
        "account_id": account_id,
        "integration": integration,
        "connection_id": connection_id,
        "records": _count(obj, "records"),
        "bytes": _count(obj, "bytes"),
        "api_calls": _count(obj, "api_calls"),
        "trigger": trigger,
        "error": error[:2000] if error else None,
        "properties": props or None,
    }


# ---------------------------------------------------------------- readers


def read_jsonl(stream: Iterable[bytes]) -> Iterator[RawRecord]:
    for line_no, line in enumerate(stream, start=1):
        text = line.strip()
        if not text:
            continue
        raw = text.decode("utf-8", errors="replace")
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield RawRecord(line_no, raw, error=f"not valid JSON ({str(exc).split(':')[0]})")
            continue
        yield RawRecord(line_no, raw, obj)


def _csv_value(name: str, value: str | None) -> Any:
    if value is None or value == "":
        return None
    if name in COUNT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    if name == "properties":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def read_csv(stream: Iterable[str]) -> Iterator[RawRecord]:
    reader = csv.reader(stream)
    header: list[str] | None = None
    for row in reader:
        if header is None:
            header = [h.strip().lower() for h in row]
            continue
        line_no = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        buf = io.StringIO()
        csv.writer(buf).writerow(row)
        raw = buf.getvalue().rstrip("\r\n")
        if len(row) != len(header):
            yield RawRecord(
                line_no, raw, error=f"has {len(row)} columns where the header has {len(header)}"
            )
            continue
        obj = {name: _csv_value(name, value) for name, value in zip(header, row, strict=True)}
        extra = {k: v for k, v in obj.items() if k not in KNOWN_FIELDS and v is not None}
        for key in extra:
            obj.pop(key)
        if extra:
            props = obj.get("properties") if isinstance(obj.get("properties"), dict) else {}
            obj["properties"] = {**extra, **(props or {})}
        yield RawRecord(line_no, raw, obj)


def read_objects(objects: Iterable[Any]) -> Iterator[RawRecord]:
    """Already-parsed objects (the HTTP API): positions count from 1."""
    for index, obj in enumerate(objects, start=1):
        yield RawRecord(index, _as_text(obj), obj)


def _as_text(obj: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:  # e.g. integers beyond 64 bits
        return json.dumps(obj, default=str)


def open_records(path: Path) -> tuple[Iterator[RawRecord], Callable[[], int], Callable[[], None]]:
    """Records of a JSONL or CSV file, a function telling how many bytes were read,
    and a closer."""
    handle = path.open("rb")
    is_csv = path.suffix.lower() == ".csv"
    if is_csv:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="replace", newline="")
        records = read_csv(text)
    else:
        records = read_jsonl(handle)
    return records, handle.tell, handle.close


# ---------------------------------------------------------------- the writer


class Ingestor:
    """Validates, deduplicates and stores events in batches, folding each accepted
    event into the daily rollups and the connection facts in the same transaction."""

    def __init__(self, engine: Engine, config: Config, *, now: datetime | None = None) -> None:
        self.engine = engine
        self.config = config
        self.now = now or utcnow()
        self.max_skew = timedelta(hours=config.ingest.max_clock_skew_hours)
        self.batch_size = config.ingest.batch_size
        self.report = IngestReport()
        self._known_integrations: set[str] | None = None
        self._touched: set[str] = set()
        # Called inside each batch's transaction after its writes, so a caller's own
        # state (the SQL pull's cursor) commits together with the batch.
        self.before_commit: Callable[[Any], None] | None = None

    # The public entry: any iterable of RawRecord from any reader.
    def ingest(
        self,
        records: Iterable[RawRecord],
        *,
        source: str,
        on_batch: Callable[[], None] | None = None,
    ) -> IngestReport:
        self.report.sources.append(source)
        self._sync_catalog()
        with self.engine.connect() as conn:
            to_ts = Bulk(conn).ts
        events: list[dict[str, Any]] = []
        rejects: list[tuple[RawRecord, str]] = []
        for record in records:
            if record.error is not None:
                rejects.append((record, record.error))
            else:
                try:
                    row = validate_event(record.obj, now=self.now, max_skew=self.max_skew)
                except Rejected as exc:
                    rejects.append((record, str(exc)))
                else:
                    row["source"] = source
                    row["ts"] = to_ts(row["occurred_at"])
                    events.append(row)
            if len(events) + len(rejects) >= self.batch_size:
                self._write_batch(events, rejects, source)
                events, rejects = [], []
                if on_batch:
                    on_batch()
        if events or rejects:
            self._write_batch(events, rejects, source)
            if on_batch:
                on_batch()
        return self.report

    def _sync_catalog(self) -> None:
        """Keep the integrations table in step with the config catalog."""
        with self.engine.begin() as conn:
            rows = [
                {
                    "key": key,
                    "name": d.name,
                    "category": d.category,
                    "rhythm": d.rhythm,
                    "auto_added": False,
                    "first_seen_at": None,
                }
                for key, d in self.config.integrations.items()
            ]
            table = Integration.__table__
            upsert(
                conn,
                table,
                rows,
                keys=["key"],
                update=lambda ex: {
                    "name": ex.name,
                    "category": ex.category,
                    "rhythm": ex.rhythm,
                    "auto_added": False,
                },
            )
            self._known_integrations = set(conn.execute(select(table.c.key)).scalars())

    def _write_batch(
        self, events: list[dict[str, Any]], rejects: list[tuple[RawRecord, str]], source: str
    ) -> None:
        report = self.report
        unique: dict[str, dict[str, Any]] = {}
        for row in events:
            if row["event_id"] in unique:
                report.duplicates += 1
            else:
                unique[row["event_id"]] = row
        with self.engine.begin() as conn:
            accepted = self._insert_events(conn, list(unique.values()))
            report.duplicates += len(unique) - len(accepted)
            report.accepted += len(accepted)
            if accepted:
                self._fold(conn, accepted)
                mark_received(conn, self.now)
            if rejects:
                self._quarantine(conn, rejects, source)
            if self.before_commit is not None:
                self.before_commit(conn)

    _EVENT_COLUMNS = (
        "event_id",
        "type",
        "occurred_at",
        "received_at",
        "account_id",
        "integration",
        "connection_id",
        "records",
        "bytes",
        "api_calls",
        "trigger",
        "error",
        "properties",
        "source",
    )

    def _insert_events(self, conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store new events; return those that were not already stored."""
        if not rows:
            return []
        bulk = Bulk(conn)
        received = bulk.ts(self.now)
        values = [
            (
                r["event_id"],
                r["type"],
                r["ts"],
                received,
                r["account_id"],
                r["integration"],
                r["connection_id"],
                r["records"],
                r["bytes"],
                r["api_calls"],
                r["trigger"],
                r["error"],
                bulk.json(r["properties"]),
                r["source"],
            )
            for r in rows
        ]
        inserted = set(
            bulk.insert_returning(
                "events", self._EVENT_COLUMNS, values, conflict="event_id", returning="event_id"
            )
        )
        return [row for row in rows if row["event_id"] in inserted]

    def _fold(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        """Fold accepted events into per-day usage and per-connection facts (as storage-
        format timestamp strings, which order like the times they encode)."""
        usage: dict[tuple[str, str], dict[str, Any]] = {}
        conns: dict[str, dict[str, Any]] = {}
        accounts: set[str] = set()
        unknown: set[str] = set()
        known = self._known_integrations or set()
        for row in rows:
            etype = row["type"]
            at: str = row["ts"]  # storage format: compares like the time it encodes
            cid = row["connection_id"]
            accounts.add(row["account_id"])
            if row["integration"] not in known:
                unknown.add(row["integration"])
            c = conns.get(cid)
            if c is None:
                c = conns[cid] = _empty_connection(cid, row["account_id"], row["integration"])
            c["last_event_at"] = _max(c["last_event_at"], at)
            if etype in _USAGE_TYPES:
                key = (cid, at[:10])
                u = usage.get(key)
                if u is None:
                    u = usage[key] = _empty_usage(cid, at[:10], row)
                u["api_calls"] += row["api_calls"] or 0
                if etype == "sync.succeeded":
                    u["successes"] += 1
                    if row["trigger"] == "manual":
                        u["manual"] += 1
                    else:
                        u["automated"] += 1
                    u["records"] += row["records"] or 0
                    u["bytes"] += row["bytes"] or 0
                    u["first_success_at"] = _min(u["first_success_at"], at)
                    u["last_success_at"] = _max(u["last_success_at"], at)
                    c["activated_at"] = _min(c["activated_at"], at)
                    c["last_success_at"] = _max(c["last_success_at"], at)
                    c["last_attempt_at"] = _max(c["last_attempt_at"], at)
                elif etype == "sync.failed":
                    u["failures"] += 1
                    u["last_failure_at"] = _max(u["last_failure_at"], at)
                    if c["last_failure_at"] is None or at >= c["last_failure_at"]:
                        c["last_error"] = row["error"] or "unknown"
                    c["last_failure_at"] = _max(c["last_failure_at"], at)
                    c["last_attempt_at"] = _max(c["last_attempt_at"], at)
                continue
            c["lifecycle"] = True
            if etype == "integration.setup_started":
                c["setup_started_at"] = _min(c["setup_started_at"], at)
            elif etype == "integration.installed":
                c["installed_at"] = _min(c["installed_at"], at)
                c["last_installed_at"] = _max(c["last_installed_at"], at)
            elif etype == "integration.setup_failed":
                c["setup_failed_at"] = _max(c["setup_failed_at"], at)
                c["setup_failures"] += 1
            elif etype == "integration.configured":
                if c["configured_at"] is None or at >= c["configured_at"]:
                    c["configured_at"] = at
                    c["config"] = row["properties"] or {}
            elif etype == "auth.expired":
                c["auth_expired_at"] = _max(c["auth_expired_at"], at)
            elif etype == "auth.restored":
                c["auth_restored_at"] = _max(c["auth_restored_at"], at)
            elif etype == "integration.uninstalled":
                c["uninstalled_at"] = _max(c["uninstalled_at"], at)
        self._upsert_usage(conn, list(usage.values()))
        self._upsert_connections(conn, list(conns.values()))
        self._touch_accounts(conn, accounts)
        if unknown:
            self._add_integrations(conn, unknown)
        self.report.touched_accounts |= accounts

    _USAGE_SUMS = ("successes", "failures", "automated", "manual", "records", "bytes", "api_calls")

    def _upsert_usage(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        bulk = Bulk(conn)
        columns = (
            "connection_id",
            "day",
            "account_id",
            "integration",
            *self._USAGE_SUMS,
            "first_success_at",
            "last_success_at",
            "last_failure_at",
        )
        values = [
            (
                r["connection_id"],
                r["day"],
                r["account_id"],
                r["integration"],
                *(r[name] for name in self._USAGE_SUMS),
                r["first_success_at"],
                r["last_success_at"],
                r["last_failure_at"],
            )
            for r in rows
        ]
        t = "daily_usage"
        updates = {name: f"{t}.{name} + excluded.{name}" for name in self._USAGE_SUMS}
        updates["first_success_at"] = bulk.least(
            f"{t}.first_success_at", "excluded.first_success_at"
        )
        updates["last_success_at"] = bulk.greatest(
            f"{t}.last_success_at", "excluded.last_success_at"
        )
        updates["last_failure_at"] = bulk.greatest(
            f"{t}.last_failure_at", "excluded.last_failure_at"
        )
        bulk.upsert_many(t, columns, values, conflict="connection_id, day", updates=updates)

    _SYNC_TIMES = (
        "activated_at",
        "last_success_at",
        "last_failure_at",
        "last_attempt_at",
        "last_event_at",
    )
    _CONN_MIN = ("setup_started_at", "installed_at", "activated_at")
    _CONN_MAX = (
        "last_installed_at",
        "setup_failed_at",
        "uninstalled_at",
        "auth_expired_at",
        "auth_restored_at",
        "last_success_at",
        "last_attempt_at",
        "last_event_at",
    )

    def _upsert_connections(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        """Fold connection facts in: earliest of the ``_CONN_MIN`` times, latest of the
        ``_CONN_MAX`` ones, error and config from the latest failure / configuration.
        Rows that saw only syncs (most) take a narrower statement."""
        bulk = Bulk(conn)
        t = "connections"
        sync_only = [r for r in rows if r["lifecycle"] is False]
        full = [r for r in rows if r["lifecycle"] is True]
        error_case = (
            f"CASE WHEN excluded.last_failure_at IS NOT NULL AND ({t}.last_failure_at IS NULL"
            f" OR excluded.last_failure_at >= {t}.last_failure_at) THEN excluded.last_error"
            f" ELSE {t}.last_error END"
        )
        for group, times in (
            (sync_only, self._SYNC_TIMES),
            (full, self._CONN_MIN + self._CONN_MAX + ("last_failure_at", "configured_at")),
        ):
            if not group:
                continue
            extra = ("config",) if group is full else ()
            columns = (
                "connection_id",
                "account_id",
                "integration",
                "last_error",
                "setup_failures",
                *extra,
                *times,
            )
            values = []
            for r in group:
                head = [
                    r["connection_id"],
                    r["account_id"],
                    r["integration"],
                    r["last_error"],
                    r["setup_failures"],
                ]
                if extra:
                    head.append(bulk.json(r["config"]))
                values.append((*head, *(r[n] for n in times)))
            updates = {
                n: bulk.least(f"{t}.{n}", f"excluded.{n}") for n in times if n in self._CONN_MIN
            }
            updates |= {
                n: bulk.greatest(f"{t}.{n}", f"excluded.{n}") for n in times if n in self._CONN_MAX
            }
            updates["last_error"] = error_case
            updates["setup_failures"] = f"{t}.setup_failures + excluded.setup_failures"
            if extra:
                updates["config"] = (
                    f"CASE WHEN excluded.configured_at IS NOT NULL AND ({t}.configured_at IS NULL"
                    f" OR excluded.configured_at >= {t}.configured_at) THEN excluded.config"
                    f" ELSE {t}.config END"
                )
            updates["last_failure_at"] = bulk.greatest(
                f"{t}.last_failure_at", "excluded.last_failure_at"
            )
            if "configured_at" in times:
                updates["configured_at"] = bulk.greatest(
                    f"{t}.configured_at", "excluded.configured_at"
                )
            bulk.upsert_many(t, columns, values, conflict="connection_id", updates=updates)

    def _touch_accounts(self, conn: Any, account_ids: set[str]) -> None:
        """Create stub accounts for unknown ids and mark every touched account as changed
        (once per run: the mark is this run's clock)."""
        fresh = account_ids - self._touched
        if not fresh:
            return
        t = Account.__table__
        existing: set[str] = set()
        ids = sorted(fresh)
        for part in chunked(ids, 500):
            existing.update(
                conn.execute(select(t.c.account_id).where(t.c.account_id.in_(part))).scalars()
            )
        new = [a for a in ids if a not in existing]
        if new:
            rows = [
                {
                    "account_id": a,
                    "is_stub": True,
                    "data_changed_at": self.now,
                    "updated_at": self.now,
                }
                for a in new
            ]
            upsert(conn, t, rows, keys=["account_id"], update=None)
            self.report.new_accounts.extend(new)
        for part in chunked(sorted(existing), 500):
            conn.execute(
                t.update().where(t.c.account_id.in_(part)).values(data_changed_at=self.now)
            )
        self._touched |= fresh

    def _add_integrations(self, conn: Any, keys: set[str]) -> None:
        rows = [
            {
                "key": k,
                "name": k.replace("_", " ").title(),
                "category": "other",
                "rhythm": "daily",
                "auto_added": True,
                "first_seen_at": self.now,
            }
            for k in sorted(keys)
        ]
        upsert(conn, Integration.__table__, rows, keys=["key"], update=None)
        assert self._known_integrations is not None
        self._known_integrations |= keys
        self.report.new_integrations.extend(sorted(keys))

    def _quarantine(self, conn: Any, rejects: list[tuple[RawRecord, str]], source: str) -> None:
        rows = []
        for record, reason in rejects:
            digest = hashlib.sha256(
                f"{source}\x00{record.line_no}\x00{record.raw}".encode()
            ).hexdigest()
            rows.append(
                {
                    "key": digest,
                    "source": source,
                    "line_no": record.line_no,
                    "reason": reason,
                    "raw": record.raw,
                    "received_at": self.now,
                }
            )
            self.report.reasons[_QUOTED.sub("…", reason)] += 1
            if len(self.report.quarantine_samples) < 20:
                self.report.quarantine_samples.append(
                    {"source": source, "line": record.line_no, "reason": reason}
                )
        self.report.quarantined += len(rows)
        upsert(conn, Quarantine.__table__, rows, keys=["key"], update=None)


def _min(a: str | None, b: str) -> str:
    return b if a is None or b < a else a


def _max(a: str | None, b: str) -> str:
    return b if a is None or b > a else a


def _empty_usage(cid: str, day: str, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "connection_id": cid,
        "day": day,
        "account_id": row["account_id"],
        "integration": row["integration"],
        "successes": 0,
        "failures": 0,
        "automated": 0,
        "manual": 0,
        "records": 0,
        "bytes": 0,
        "api_calls": 0,
        "first_success_at": None,
        "last_success_at": None,
        "last_failure_at": None,
    }


def _empty_connection(cid: str, account_id: str, integration: str) -> dict[str, Any]:
    return {
        "connection_id": cid,
        "account_id": account_id,
        "integration": integration,
        "setup_started_at": None,
        "installed_at": None,
        "last_installed_at": None,
        "setup_failed_at": None,
        "setup_failures": 0,
        "uninstalled_at": None,
        "auth_expired_at": None,
        "auth_restored_at": None,
        "activated_at": None,
        "last_success_at": None,
        "last_failure_at": None,
        "last_attempt_at": None,
        "last_error": None,
        "last_event_at": None,
        "config": None,
        "configured_at": None,
        "lifecycle": False,
    }


def ingest_paths(
    engine: Engine,
    config: Config,
    paths: list[Path],
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest files (JSONL or CSV) in order; ``progress`` receives bytes read so far."""
    ingestor = Ingestor(engine, config, now=now)
    done_before = 0
    for path in paths:
        records, tell, close = open_records(path)

        def report_progress(offset: int = done_before, tell: Callable[[], int] = tell) -> None:
            if progress:
                progress(offset + tell())

        try:
            ingestor.ingest(records, source=path.name, on_batch=report_progress)
        finally:
            close()
        done_before += path.stat().st_size
    return ingestor.report
