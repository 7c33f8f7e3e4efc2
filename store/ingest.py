"""Event ingest: one code path for files, the HTTP API and SQL pulls.

Every input record is either accepted (stored once, folded into rollups and
connection facts), a duplicate (its ``event_id`` is already stored) or quarantined
(kept verbatim with its reason and line number). Nothing is dropped silently and
one bad record never stops the rest. Each batch commits in one transaction, so a
killed import, run again, ends with the same totals.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, select

from integration_signals.config import Config
from integration_signals.store.bulk import Bulk
from integration_signals.store.events import (  # noqa: F401  (names re-exported as the ingest API)
    EVENT_TYPES,
    RawRecord,
    Reject,
    Rejected,
    clean_raw,
    open_records,
    parse_jsonl_chunk,
    parse_records,
    read_csv,  # noqa: F401  (re-exported: the readers are part of the ingest API)
    read_jsonl,  # noqa: F401
    read_objects,  # noqa: F401
    validate_event,
)
from integration_signals.store.feed import mark_received
from integration_signals.store.lifeline import exit_with_parent
from integration_signals.store.models import Account, Integration, Quarantine
from integration_signals.store.sql import chunked, upsert, utcnow

# Records per statement group inside a transaction (the transaction size is config).
CHUNK = 10_000
# JSONL files at least this big are parsed in a worker process while this one writes.
PARALLEL_PARSE_BYTES = 8 * 1024 * 1024
_PARSE_BLOCK_BYTES = 2 * 1024 * 1024
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\d{4}-\d\d-\d\dT\S+")
_USAGE_TYPES = frozenset({"sync.succeeded", "sync.failed", "api.calls"})
Row = tuple[Any, ...]  # see store.events.ROW_FIELDS
Chunk = tuple[list[Row], list[Reject]]


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
        self._known_accounts: set[str] = set()
        self._received = False  # new events since the last flush (moves the feed marker)
        self._usage: dict[tuple[str, str], dict[str, Any]] = {}
        self._conns: dict[str, dict[str, Any]] = {}
        self._accounts: set[str] = set()
        self._unknown: set[str] = set()
        # Called inside each transaction after its writes, just before it commits, so a
        # caller's own state (the SQL pull's cursor) commits together with the batch.
        self.before_commit: Callable[[Any], None] | None = None

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def ingest(
        self,
        records: Iterable[RawRecord],
        *,
        source: str,
        on_batch: Callable[[], None] | None = None,
    ) -> IngestReport:
        """The public entry: any iterable of RawRecord from any reader."""
        size = min(CHUNK, self.batch_size)

        def chunks() -> Iterator[Chunk]:
            block: list[RawRecord] = []
            for record in records:
                block.append(record)
                if len(block) >= size:
                    yield self.parse(block)
                    block = []
            yield self.parse(block)

        return self.ingest_chunks(chunks(), source=source, on_batch=on_batch)

    def parse(self, records: Iterable[RawRecord]) -> Chunk:
        return parse_records(records, now=self.now, max_skew=self.max_skew, postgres=self.postgres)

    def ingest_chunks(
        self,
        chunks: Iterable[Chunk],
        *,
        source: str,
        on_batch: Callable[[], None] | None = None,
    ) -> IngestReport:
        """Store already-validated chunks in transactions of ``batch_size`` records.
        Inside one, events are stored chunk by chunk while their rollups accumulate in
        memory; the rollups are written once at the end of the transaction (far fewer
        upserts), then it commits."""
        self.report.sources.append(source)
        self._sync_catalog()
        with self.engine.connect() as conn:
            in_transaction = 0
            trans = conn.begin()
            try:
                for rows, rejects in chunks:
                    self._write_chunk(conn, rows, rejects, source)
                    in_transaction += len(rows) + len(rejects)
                    if in_transaction >= self.batch_size:
                        self._flush(conn)
                        if self.before_commit is not None:
                            self.before_commit(conn)
                        trans.commit()
                        trans = conn.begin()
                        in_transaction = 0
                        if on_batch:
                            on_batch()
                self._flush(conn)
                if self.before_commit is not None:
                    self.before_commit(conn)
                trans.commit()
            except BaseException:
                trans.rollback()
                raise
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

    def _write_chunk(self, conn: Any, rows: list[Row], rejects: list[Reject], source: str) -> None:
        """Store a chunk's new events and fold them into the pending rollups; quarantine
        its rejects. The caller owns the transaction."""
        report = self.report
        unique: dict[str, Row] = {}
        for row in rows:
            if row[0] in unique:
                report.duplicates += 1
            else:
                unique[row[0]] = row
        accepted = self._insert_events(conn, list(unique.values()), source)
        report.duplicates += len(unique) - len(accepted)
        report.accepted += len(accepted)
        if accepted:
            self._fold(accepted)
            self._received = True
        if rejects:
            self._quarantine(conn, rejects, source)

    def _flush(self, conn: Any) -> None:
        """Write the pending rollups, connection facts and account marks."""
        self._upsert_usage(conn, list(self._usage.values()))
        self._upsert_connections(conn, list(self._conns.values()))
        self._touch_accounts(conn, self._accounts)
        if self._unknown:
            self._add_integrations(conn, self._unknown)
        if self._received:
            mark_received(conn, self.now)
            self._received = False
        self.report.touched_accounts |= self._accounts
        self._usage, self._conns, self._accounts, self._unknown = {}, {}, set(), set()

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

    def _insert_events(self, conn: Any, rows: list[Row], source: str) -> list[Row]:
        """Store new events; return those that were not already stored."""
        if not rows:
            return []
        bulk = Bulk(conn)
        received = bulk.ts(self.now)
        values = [(*r[:3], received, *r[3:], source) for r in rows]
        inserted = set(
            bulk.insert_returning(
                "events", self._EVENT_COLUMNS, values, conflict="event_id", returning="event_id"
            )
        )
        if len(inserted) == len(rows):
            return rows
        return [row for row in rows if row[0] in inserted]

    def _fold(self, rows: list[Row]) -> None:
        """Fold accepted events into pending per-day usage and per-connection facts (as
        storage-format timestamp strings, which order like the times they encode)."""
        usage = self._usage
        conns = self._conns
        accounts = self._accounts
        unknown = self._unknown
        known = self._known_integrations or set()
        for row in rows:
            (_id, etype, at, account, integration, cid, records, nbytes, api_calls, trigger,
             error, props) = row  # fmt: skip
            accounts.add(account)
            if integration not in known:
                unknown.add(integration)
            c = conns.get(cid)
            if c is None:
                c = conns[cid] = _empty_connection(cid, account, integration)
            c["last_event_at"] = _max(c["last_event_at"], at)
            if etype in _USAGE_TYPES:
                key = (cid, at[:10])
                u = usage.get(key)
                if u is None:
                    u = usage[key] = _empty_usage(cid, at[:10], account, integration)
                u["api_calls"] += api_calls or 0
                if etype == "sync.succeeded":
                    u["successes"] += 1
                    if trigger == "manual":
                        u["manual"] += 1
                    else:
                        u["automated"] += 1
                    u["records"] += records or 0
                    u["bytes"] += nbytes or 0
                    u["first_success_at"] = _min(u["first_success_at"], at)
                    u["last_success_at"] = _max(u["last_success_at"], at)
                    c["activated_at"] = _min(c["activated_at"], at)
                    c["last_success_at"] = _max(c["last_success_at"], at)
                    c["last_attempt_at"] = _max(c["last_attempt_at"], at)
                elif etype == "sync.failed":
                    u["failures"] += 1
                    u["last_failure_at"] = _max(u["last_failure_at"], at)
                    if c["last_failure_at"] is None or at >= c["last_failure_at"]:
                        c["last_error"] = error or "unknown"
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
                    c["config"] = orjson.loads(props) if props else {}
            elif etype == "auth.expired":
                c["auth_expired_at"] = _max(c["auth_expired_at"], at)
            elif etype == "auth.restored":
                c["auth_restored_at"] = _max(c["auth_restored_at"], at)
            elif etype == "integration.uninstalled":
                c["uninstalled_at"] = _max(c["uninstalled_at"], at)

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
        """Create stub accounts for unknown ids and mark every account this transaction
        touched as changed, stamped at write time (inside the writing transaction), so
        an incremental scoring run that read before this commit still rescores them."""
        if not account_ids:
            return
        stamp = utcnow()
        t = Account.__table__
        known = self._known_accounts
        unknown = sorted(account_ids - known)
        for part in chunked(unknown, 500):
            known.update(
                conn.execute(select(t.c.account_id).where(t.c.account_id.in_(part))).scalars()
            )
        new = [a for a in unknown if a not in known]
        if new:
            rows = [
                {"account_id": a, "is_stub": True, "data_changed_at": stamp, "updated_at": stamp}
                for a in new
            ]
            upsert(conn, t, rows, keys=["account_id"], update=None)
            self.report.new_accounts.extend(new)
            known.update(new)
        existing = sorted(account_ids - set(new))
        for part in chunked(existing, 500):
            conn.execute(t.update().where(t.c.account_id.in_(part)).values(data_changed_at=stamp))

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

    def _quarantine(self, conn: Any, rejects: list[Reject], source: str) -> None:
        """Keep rejected lines verbatim with reason and position (once per line)."""
        rows = []
        for line_no, verbatim, why in rejects:
            # The character rule (store.events): every database stores the same text.
            raw, reason = clean_raw(verbatim), clean_raw(why)
            digest = hashlib.sha256(f"{source}\x00{line_no}\x00{raw}".encode()).hexdigest()
            rows.append(
                {
                    "key": digest,
                    "source": source,
                    "line_no": line_no,
                    "reason": reason,
                    "raw": raw,
                    "received_at": self.now,
                }
            )
            self.report.reasons[_QUOTED.sub("…", reason)] += 1
            if len(self.report.quarantine_samples) < 20:
                self.report.quarantine_samples.append(
                    {"source": source, "line": line_no, "reason": reason}
                )
        self.report.quarantined += len(rows)
        upsert(conn, Quarantine.__table__, rows, keys=["key"], update=None)


def _min(a: str | None, b: str) -> str:
    return b if a is None or b < a else a


def _max(a: str | None, b: str) -> str:
    return b if a is None or b > a else a


def _empty_usage(cid: str, day: str, account: str, integration: str) -> dict[str, Any]:
    return {
        "connection_id": cid,
        "day": day,
        "account_id": account,
        "integration": integration,
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


def _jsonl_blocks(path: Path, block_bytes: int) -> Iterator[tuple[bytes, int, int]]:
    """Blocks of whole lines: (data, number of its first line, file offset after it)."""
    line_no = 1
    carry = b""
    with path.open("rb") as handle:
        while True:
            block = handle.read(block_bytes)
            if not block:
                break
            data = carry + block
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            whole, carry = data[: cut + 1], data[cut + 1 :]
            yield whole, line_no, handle.tell() - len(carry)
            line_no += whole.count(b"\n")
        if carry:
            yield carry, line_no, handle.tell()


def _parallel_chunks(
    ingestor: Ingestor, path: Path, progress: Callable[[int], None] | None, block_bytes: int
) -> Iterator[Chunk]:
    """Parse a JSONL file in a worker process, a few blocks ahead of the writer."""
    ahead = 3
    context = get_context("spawn")
    # The worker exits when this process dies, even by SIGKILL (store.lifeline).
    with ProcessPoolExecutor(
        max_workers=1,
        mp_context=context,
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        pending: deque[tuple[Future[Chunk], int]] = deque()
        blocks = _jsonl_blocks(path, block_bytes)
        args = (ingestor.now, ingestor.max_skew, ingestor.postgres)
        for data, first_line, offset in blocks:
            pending.append((pool.submit(parse_jsonl_chunk, data, first_line, *args), offset))
            if len(pending) >= ahead:
                future, done = pending.popleft()
                yield future.result()
                if progress:
                    progress(done)
        while pending:
            future, done = pending.popleft()
            yield future.result()
            if progress:
                progress(done)


def ingest_paths(
    engine: Engine,
    config: Config,
    paths: list[Path],
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    parallel: bool | None = None,
    block_bytes: int = _PARSE_BLOCK_BYTES,
) -> IngestReport:
    """Ingest files (JSONL or CSV) in order; ``progress`` receives bytes read so far.

    Big JSONL files are parsed in a worker process so parsing overlaps with writing
    (``parallel`` forces it on or off; by default it is on for files of 8 MiB or more
    on machines with more than one core), in blocks of ``block_bytes``."""
    ingestor = Ingestor(engine, config, now=now)
    done_before = 0
    for path in paths:
        size = path.stat().st_size
        use_worker = parallel
        if use_worker is None:
            use_worker = size >= PARALLEL_PARSE_BYTES and (os.cpu_count() or 1) > 1
        if use_worker and path.suffix.lower() != ".csv":

            def report_bytes(done: int, offset: int = done_before) -> None:
                if progress:
                    progress(offset + done)

            chunks = _parallel_chunks(ingestor, path, report_bytes, block_bytes)
            ingestor.ingest_chunks(chunks, source=path.name)
        else:
            records, tell, close = open_records(path)

            def report_progress(offset: int = done_before, tell: Callable[[], int] = tell) -> None:
                if progress:
                    progress(offset + tell())

            try:
                ingestor.ingest(records, source=path.name, on_batch=report_progress)
            finally:
                close()
        done_before += size
    return ingestor.report
