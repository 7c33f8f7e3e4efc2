"""Accounts: import from CSV/JSON, domain normalisation, and resolving what a person typed."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from rapidfuzz import fuzz, process
from sqlalchemy import Engine, func, or_, select

from integration_signals.store.events import (
    Rejected,
    check_identifier,
    clean_json,
    clean_raw,
    clean_text,
)
from integration_signals.store.models import Account, Quarantine
from integration_signals.store.sql import chunked, upsert, utcnow

SEGMENTS = ("smb", "mid_market", "enterprise")
_SEGMENT_ALIASES = {
    "smb": "smb",
    "small": "smb",
    "small_business": "smb",
    "startup": "smb",
    "mid_market": "mid_market",
    "midmarket": "mid_market",
    "mid": "mid_market",
    "mm": "mid_market",
    "enterprise": "enterprise",
    "ent": "enterprise",
    "large": "enterprise",
}
TEXT_FIELDS = ("name", "domain", "plan", "industry", "csm", "owner", "salesforce_id", "hubspot_id")
FLOAT_FIELDS = ("mrr", "expansion_mrr")
INT_FIELDS = ("employees", "api_limit_daily")
TIME_FIELDS = ("created_at", "churned_at")
ACCOUNT_FIELDS = frozenset(
    ("account_id", "segment", "renewal_date", "renewed", "traits")
    + TEXT_FIELDS
    + FLOAT_FIELDS
    + INT_FIELDS
    + TIME_FIELDS
)


class BadAccount(ValueError):
    """An account row breaks a rule; the message says which field and why."""


def normalize_domain(value: str | None) -> str | None:
    """``https://www.Acme.com/path`` -> ``acme.com``; None for nothing usable."""
    if not value:
        return None
    text = str(value).strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.split("@")[-1].split(":", 1)[0].strip(".")
    if text.startswith("www."):
        text = text[4:]
    return text or None


def normalize_segment(value: Any) -> str | None:
    if value is None or value == "":
        return None
    key = re.sub(r"[\s\-]+", "_", str(value).strip().lower())
    if key not in _SEGMENT_ALIASES:
        raise BadAccount(f"segment {str(value)[:40]!r} must be one of smb, mid_market, enterprise")
    return _SEGMENT_ALIASES[key]


def _parse_bool(name: str, value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "y", "1", "t"):
        return True
    if text in ("false", "no", "n", "0", "f"):
        return False
    raise BadAccount(f"{name} {str(value)[:40]!r} must be true or false")


def _parse_time(name: str, value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise BadAccount(f"{name} {str(value)[:40]!r} is not an ISO date or timestamp") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_date(name: str, value: Any) -> date | None:
    parsed = _parse_time(name, value)
    return parsed.date() if parsed else None


def _number(name: str, value: Any, kind: type) -> Any:
    if value is None or value == "":
        return None
    try:
        number = float(str(value).replace(",", "").replace("$", "").strip())
    except ValueError:
        raise BadAccount(f"{name} {str(value)[:40]!r} is not a number") from None
    if number < 0:
        raise BadAccount(f"{name} must not be negative, got {number:g}")
    return int(number) if kind is int else number


def _trait_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text == "":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def account_row(obj: dict[str, Any]) -> dict[str, Any]:
    """Validate one account object; returns only the columns the input named."""
    norm = {str(k).strip().lower(): v for k, v in obj.items()}
    try:
        # The identifier rule of events (store.events), on both databases: a control
        # character or lone surrogate in the id refuses the row with its reason.
        row: dict[str, Any] = {"account_id": check_identifier("account_id", norm.get("account_id"))}
    except Rejected as exc:
        raise BadAccount(str(exc)) from None
    for name in TEXT_FIELDS:
        if name in norm:
            value = norm[name]
            row[name] = clean_text(str(value).strip()) if value not in (None, "") else None
    if "segment" in norm:
        row["segment"] = normalize_segment(norm["segment"])
    for name in FLOAT_FIELDS:
        if name in norm:
            row[name] = _number(name, norm[name], float)
    for name in INT_FIELDS:
        if name in norm:
            row[name] = _number(name, norm[name], int)
    for name in TIME_FIELDS:
        if name in norm:
            row[name] = _parse_time(name, norm[name])
    if "renewal_date" in norm:
        row["renewal_date"] = _parse_date("renewal_date", norm["renewal_date"])
    if "renewed" in norm:
        row["renewed"] = _parse_bool("renewed", norm["renewed"])
    traits = dict(norm.get("traits") or {}) if isinstance(norm.get("traits"), dict) else {}
    for key, value in norm.items():
        if key not in ACCOUNT_FIELDS:
            traits[key] = _trait_value(value)
    if traits:
        row["traits"] = clean_json({k: v for k, v in traits.items() if v is not None})
    return row


@dataclass
class ImportReport:
    imported: int = 0
    created: int = 0
    updated: int = 0
    quarantined: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    account_ids: set[str] = field(default_factory=set)  # the accounts written

    def as_json(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "created": self.created,
            "updated": self.updated,
            "quarantined": self.quarantined,
            "problems": self.problems[:50],
        }


@dataclass
class _Broken:
    """A row that could not even be split into fields."""

    reason: str


def _read_account_file(path: Path) -> Iterator[tuple[int, str, Any]]:
    data = path.read_bytes()
    if path.suffix.lower() == ".csv":
        text = data.decode("utf-8-sig", errors="replace")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header_len = len(reader.fieldnames or [])
        for row in reader:
            raw = orjson.dumps({str(k): v for k, v in row.items()}).decode()
            if None in row or None in row.values():
                width = header_len + len(row.get(None) or []) if None in row else "fewer"
                yield (
                    reader.line_num,
                    raw,
                    _Broken(f"has {width} columns where the header has {header_len}"),
                )
            else:
                yield reader.line_num, raw, row
        return
    stripped = data.strip()
    if stripped.startswith(b"[") or stripped.startswith(b'{"accounts"'):
        try:
            parsed = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise BadAccount(f"{path.name}: not valid JSON ({exc})") from None
        items = parsed["accounts"] if isinstance(parsed, dict) else parsed
        for index, obj in enumerate(items, start=1):
            yield index, orjson.dumps(obj).decode(), obj
        return
    for line_no, line in enumerate(stripped.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, line.decode("utf-8", "replace"), orjson.loads(line)
        except orjson.JSONDecodeError:
            yield line_no, line.decode("utf-8", "replace"), None


def import_accounts(engine: Engine, path: Path, *, now: datetime | None = None) -> ImportReport:
    """Insert or update accounts from a CSV, JSON array or JSONL file; bad rows are
    quarantined with their line number and the rest continue."""
    return import_account_records(engine, _read_account_file(path), source=path.name, now=now)


def import_account_objects(
    engine: Engine,
    objects: Iterable[dict[str, Any]],
    *,
    source: str,
    now: datetime | None = None,
) -> ImportReport:
    """Insert or update accounts given as objects (demo data, Segment group calls)."""
    records = ((n, _object_text(obj), obj) for n, obj in enumerate(objects, 1))
    return import_account_records(engine, records, source=source, now=now)


def _object_text(obj: Any) -> str:
    try:
        return orjson.dumps(obj, default=str).decode()
    except TypeError:  # lone surrogates, integers beyond 64 bits
        return json.dumps(obj, default=str)


def import_account_records(
    engine: Engine,
    records: Iterable[tuple[int, str, Any]],
    *,
    source: str,
    now: datetime | None = None,
) -> ImportReport:
    """The one import path: validate, upsert in place, quarantine bad rows."""
    now = now or utcnow()
    report = ImportReport()
    rows: dict[str, dict[str, Any]] = {}
    bad: list[dict[str, Any]] = []
    for line_no, raw, obj in records:
        try:
            if isinstance(obj, _Broken):
                raise BadAccount(obj.reason)
            if not isinstance(obj, dict):
                raise BadAccount("not a JSON object")
            row = account_row(obj)
        except BadAccount as exc:
            raw = clean_raw(raw)
            reason = clean_text(str(exc))
            key = hashlib.sha256(
                f"accounts:{source}\x00{line_no}\x00{raw}".encode("utf-8", "surrogatepass")
            ).hexdigest()
            bad.append(
                {
                    "key": key,
                    "source": f"accounts:{source}",
                    "line_no": line_no,
                    "reason": reason,
                    "raw": raw,
                    "received_at": now,
                }
            )
            report.problems.append({"line": line_no, "reason": reason})
            continue
        rows[row["account_id"]] = {**rows.get(row["account_id"], {}), **row}
    table = Account.__table__
    with engine.begin() as conn:
        ids = list(rows)
        existing: set[str] = set()
        for part in chunked(ids, 500):
            existing.update(
                conn.execute(
                    select(table.c.account_id).where(
                        table.c.account_id.in_(part), table.c.is_stub.is_(False)
                    )
                ).scalars()
            )
        # Group rows by the set of columns they carry so each statement is uniform.
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows.values():
            full = {**row, "is_stub": False, "data_changed_at": now, "updated_at": now}
            by_shape.setdefault(tuple(sorted(full)), []).append(full)
        for shape, group in by_shape.items():
            updatable = [c for c in shape if c != "account_id"]
            upsert(
                conn,
                table,
                group,
                keys=["account_id"],
                update=lambda ex, cols=updatable: {c: ex[c] for c in cols},
            )
        if bad:
            upsert(conn, Quarantine.__table__, bad, keys=["key"], update=None)
    report.account_ids = set(rows)
    report.imported = len(rows)
    report.updated = len(existing)
    report.created = len(rows) - len(existing)
    report.quarantined = len(bad)
    return report


# ---------------------------------------------------------------- resolving a name


@dataclass
class Resolution:
    """What a typed account reference matched: exactly one, several, or none."""

    query: str
    matched_by: str | None  # id | name | domain | fuzzy | None
    accounts: list[Account]
    suggestions: list[str]

    @property
    def account(self) -> Account | None:
        return self.accounts[0] if len(self.accounts) == 1 else None


def resolve_account(
    engine: Engine, text: str, *, limit: int = 5, allowed: set[str] | None = None
) -> Resolution:
    """Match by id, exact name (case-insensitive), domain, then fuzzy name.

    The text is only ever a bound parameter, never part of a query. ``allowed``
    limits the search to those account ids (channel access rules).
    """
    from sqlmodel import Session

    query = (text or "").strip()[:200]
    with Session(engine) as session:

        def scoped(stmt: Any) -> Any:
            return stmt.where(Account.account_id.in_(allowed)) if allowed is not None else stmt

        if not query:
            return Resolution(query, None, [], [])
        hit = session.exec(scoped(select(Account).where(Account.account_id == query))).first()
        if hit is not None:
            return Resolution(query, "id", [hit[0]], [])
        lowered = query.lower()
        named = [
            r[0]
            for r in session.exec(
                scoped(select(Account).where(func.lower(Account.name) == lowered))
            ).all()
        ]
        if named:
            return Resolution(query, "name", named, [])
        domain = normalize_domain(query)
        if domain and "." in domain:
            by_domain = [
                r[0]
                for r in session.exec(
                    scoped(
                        select(Account).where(
                            or_(
                                func.lower(Account.domain) == domain,
                                func.lower(Account.domain) == "www." + domain,
                            )
                        )
                    )
                ).all()
            ]
            if by_domain:
                return Resolution(query, "domain", by_domain, [])
        # Plain rows, not ORM objects: with 10,000 accounts that halves the cost.
        candidates = (
            session.connection()
            .execute(
                scoped(select(Account.account_id, Account.name).where(Account.name.is_not(None)))
            )
            .all()
        )
        names = {aid: name for aid, name in candidates}
        scored = process.extract(
            lowered,
            {k: v.lower() for k, v in names.items()},
            scorer=fuzz.WRatio,
            limit=max(limit, 5),
            score_cutoff=50,  # nothing below is used: suggestions start at 50
        )
        strong = [(aid, score) for _name, score, aid in scored if score >= 88]
        suggestions = [names[aid] for _name, score, aid in scored if score >= 50][:limit]
        if strong:
            best = strong[0][1]
            ids = [aid for aid, score in strong if score >= best - 2][:limit]
            accounts = [session.get(Account, aid) for aid in ids]
            return Resolution(query, "fuzzy", [a for a in accounts if a is not None], [])
        return Resolution(query, None, [], suggestions)
