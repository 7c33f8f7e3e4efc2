"""The event contract: which records are events, and reading them from files.

Pure: no database. Ingest (``store.ingest``) stores what this accepts; a worker
process can run ``parse_jsonl_chunk`` so parsing overlaps with writing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

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
MAX_COUNT = 2**62
# Free text (``error`` and every string inside ``properties``) is clipped to this many
# characters; ``properties`` as a whole may not exceed MAX_PROPERTIES_BYTES as JSON.
MAX_TEXT_LENGTH = 2000
MAX_PROPERTIES_BYTES = 64 * 1024

# The byte and character rule (the same on SQLite and PostgreSQL, for every input):
# identifiers refuse C0 and C1 control characters, DEL and lone surrogates (the record
# is quarantined, the reason names the field); free text keeps tab, newline and
# carriage return and has every other such character replaced by U+FFFD, the
# character invalid UTF-8 decodes to. A line that is not valid UTF-8 is quarantined.
_ID_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_TEXT_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# The same characters as serialised JSON shows them (false positives only cost a walk).
_JSON_BAD = re.compile(r"\\u00[01][0-9a-f]|\\u007f|\\[bf]|[\x7f-\x9f]|\\ud[89a-f]", re.I)
_RAW_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


class Rejected(ValueError):
    """A record breaks a rule of the data contract; the message is the reason."""


@dataclass(slots=True)
class RawRecord:
    """One input record: its position, the verbatim text, and (if parsed) the object."""

    line_no: int
    raw: str
    obj: Any = None
    error: str | None = None  # set when the text could not be parsed at all


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


def clean_text(text: str) -> str:
    """Free text under the character rule: bad characters become U+FFFD."""
    if text.isprintable() or not _TEXT_BAD.search(text):
        return text
    return _TEXT_BAD.sub("\ufffd", text)


def clean_raw(raw: str) -> str:
    """A quarantined line under the character rule: control characters and lone
    surrogates are written as JSON escapes (``\\u0000``), so the stored text shows
    what arrived and every database can store it."""
    if not _RAW_BAD.search(raw):
        return raw
    return _RAW_BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", raw)


def _bad_char(name: str, value: str) -> Rejected:
    found = _ID_BAD.search(value)
    assert found is not None
    char = ord(found.group())
    what = "a lone surrogate" if 0xD800 <= char <= 0xDFFF else "a control character"
    return Rejected(
        f"{name} contains {what} (U+{char:04X} at position {found.start()}); identifiers "
        "must be printable text"
    )


def check_identifier(name: str, value: Any) -> str:
    """An identifier outside an event (an account id from a file or a Segment
    ``group`` call) under the same rule as an event's: ordinary whitespace trimmed,
    at most MAX_ID_LENGTH characters, no control characters or lone surrogates."""
    if value is None or (isinstance(value, str) and value.strip(" \t\n\r") == ""):
        raise Rejected(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Rejected(f"{name} must be a string")
    text = str(value).strip(" \t\n\r")
    if len(text) > MAX_ID_LENGTH:
        raise Rejected(f"{name} is longer than {MAX_ID_LENGTH} characters")
    if _ID_BAD.search(text):
        raise _bad_char(name, text)
    return text


def clean_json(value: Any) -> Any:
    """Every string inside a JSON value (keys too) under the free-text rule, clipped."""
    return _clean_json(value)


def _clean_json(value: Any) -> Any:
    """Strings inside properties (keys too) under the character rule, each clipped."""
    if isinstance(value, str):
        return clean_text(value[:MAX_TEXT_LENGTH])
    if isinstance(value, dict):
        return {_clean_json(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


def properties_text(props: dict[str, Any] | None) -> str | None:
    """``properties`` as the JSON text to store: strings cleaned and clipped when
    needed (the common small, clean object is serialised once and checked once)."""
    if not props:
        return None
    try:
        text = orjson.dumps(props).decode()
    except TypeError:  # lone surrogates, integers beyond 64 bits
        text = None
    if text is None or len(text) > MAX_TEXT_LENGTH or _JSON_BAD.search(text):
        try:
            text = orjson.dumps(_clean_json(props)).decode()
        except TypeError:
            text = json.dumps(_clean_json(props), default=str, ensure_ascii=False)
        if len(text) > MAX_PROPERTIES_BYTES:
            raise Rejected(
                f"properties is larger than {MAX_PROPERTIES_BYTES // 1024} KB as JSON"
                f" ({len(text):,} characters after clipping strings to {MAX_TEXT_LENGTH:,})"
            )
    return text


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
    text = str(value).strip(" \t\n\r")  # ordinary whitespace; control characters are refused
    if not text:
        if required:
            raise Rejected(f"{name} is required")
        return None
    if len(text) > MAX_ID_LENGTH:
        raise Rejected(f"{name} is longer than {MAX_ID_LENGTH} characters")
    if _ID_BAD.search(text):
        raise _bad_char(name, text)
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
    # isprintable() is a cheap superset test (it also refuses e.g. U+00A0, which the
    # rule allows); the regex decides only for the rare identifiers it flags.
    joined = f"{event_id}{account_id}{integration}{connection_id}"
    if not joined.isprintable() and _ID_BAD.search(joined):
        for name, value in (
            ("event_id", event_id), ("account_id", account_id),
            ("integration", integration), ("connection_id", connection_id),
        ):  # fmt: skip
            if value and _ID_BAD.search(value):
                raise _bad_char(name, value)
    trigger = obj.get("trigger")
    if trigger is not None and (type(trigger) is not str or trigger not in TRIGGERS):
        raise Rejected(f"trigger {str(trigger)[:40]!r} must be scheduled, webhook or manual")
    error = obj.get("error")
    if error is not None and not isinstance(error, str):
        error = orjson.dumps(_clean_json(error)).decode()
    if error:
        error = clean_text(error[:MAX_TEXT_LENGTH])
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
        "error": error or None,
        "properties": properties_text(props),
    }


# ---------------------------------------------------------------- readers


def read_jsonl(stream: Iterable[bytes], *, first_line: int = 1) -> Iterator[RawRecord]:
    for line_no, line in enumerate(stream, start=first_line):
        text = line.strip()
        if not text:
            continue
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raw = text.decode("utf-8", errors="replace")
            obj, error = _loads_slowly(text, exc)
            if error is not None:
                yield RawRecord(line_no, raw, error=error)
                continue
            yield RawRecord(line_no, raw, obj)
            continue
        yield RawRecord(line_no, text.decode("utf-8", errors="replace"), obj)


def loads_json(text: bytes) -> Any:
    """JSON text to an object, accepting lone surrogate escapes (which validation then
    treats by the character rule); raises ValueError naming the problem."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        obj, error = _loads_slowly(text, exc)
        if error is not None:
            raise ValueError(error) from None
        return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads_slowly(text: bytes, exc: Exception) -> tuple[Any, str | None]:
    """A line orjson refused: (object, None) when it is JSON whose only fault is a lone
    surrogate escape (validation then applies the character rule), else (None, the
    reason to quarantine it)."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as bad:
        return None, f"not valid UTF-8 (byte 0x{text[bad.start]:02x} at position {bad.start})"
    if "surrogate" in str(exc):
        try:
            return json.loads(decoded, parse_constant=_refuse_constant), None
        except ValueError:
            pass
    return None, f"not valid JSON ({str(exc).split(':')[0]})"


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
        yield RawRecord(index, as_text(obj), obj)


def as_text(obj: Any) -> str:
    """An object as JSON text for the quarantine (never raises)."""
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


# ---------------------------------------------------------------- rows for storage

# An accepted event travels as a tuple (cheap to build, pickle and index):
ROW_FIELDS = (
    "event_id", "type", "ts", "account_id", "integration", "connection_id", "records",
    "bytes", "api_calls", "trigger", "error", "properties",
)  # fmt: skip
# ``ts`` is occurred_at in the database's storage format, which orders like the time
# it encodes; ``properties`` is JSON text or None.


def ts_formatter(postgres: bool) -> Callable[[datetime], str]:
    """Aware UTC datetime -> the text SQLAlchemy stores for our DateTime columns (the
    one definition of that format; isoformat is several times faster than strftime)."""
    if postgres:
        return lambda value: value.isoformat(" ", "microseconds")
    return lambda value: value.isoformat(" ", "microseconds")[:26]


def to_row(event: dict[str, Any], fmt: Callable[[datetime], str]) -> tuple[Any, ...]:
    props = event["properties"]  # already JSON text (``properties_text``)
    return (
        event["event_id"], event["type"], fmt(event["occurred_at"]), event["account_id"],
        event["integration"], event["connection_id"], event["records"], event["bytes"],
        event["api_calls"], event["trigger"], event["error"],
        props,
    )  # fmt: skip


Reject = tuple[int, str, str]  # line number, verbatim text, reason


def parse_records(
    records: Iterable[RawRecord], *, now: datetime, max_skew: timedelta, postgres: bool
) -> tuple[list[tuple[Any, ...]], list[Reject]]:
    """Validate records into storage rows and rejects."""
    fmt = ts_formatter(postgres)
    rows: list[tuple[Any, ...]] = []
    rejects: list[Reject] = []
    for record in records:
        if record.error is not None:
            rejects.append((record.line_no, record.raw, record.error))
            continue
        try:
            event = validate_event(record.obj, now=now, max_skew=max_skew)
        except Rejected as exc:
            rejects.append((record.line_no, record.raw, str(exc)))
        else:
            rows.append(to_row(event, fmt))
    return rows, rejects


def parse_jsonl_chunk(
    data: bytes, first_line: int, now: datetime, max_skew: timedelta, postgres: bool
) -> tuple[list[tuple[Any, ...]], list[Reject]]:
    """Parse whole lines of a JSONL file starting at line ``first_line`` (runs in a
    worker process for big files)."""
    records = read_jsonl(data.split(b"\n"), first_line=first_line)
    return parse_records(records, now=now, max_skew=max_skew, postgres=postgres)
