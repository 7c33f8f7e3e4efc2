"""One bad byte loses nothing, on either database: the same hostile file (NUL and
control characters in every field, invalid UTF-8, a lone surrogate escape, 100 KB
strings) ingested by file (`signals ingest`) and by HTTP (`POST /v1/events`) into
SQLite and, when SIGNALS_TEST_DATABASE_URL names one, PostgreSQL, stores the same
rows everywhere: bad identifiers quarantined with a reason naming the field, free
text cleaned, every good line stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from integration_signals.config import Settings, load_config
from integration_signals.schedules.server import create_app
from integration_signals.store.engine import make_engine
from integration_signals.store.models import Account, Event, Quarantine
from integration_signals.store.sql import as_utc
from tests.schedules.conftest import TOKEN, live_app  # noqa: F401  (fixture)

AT = "2025-06-01T12:00:00Z"
BIG = "x" * 100_000


def _line(i: int, **fields: Any) -> bytes:
    event = {
        "event_id": f"e-{i}",
        "type": "sync.failed",
        "occurred_at": AT,
        "account_id": "acme",
        "integration": "salesforce",
    }
    event.update(fields)
    return json.dumps(event).encode()


def hostile_lines() -> list[bytes]:
    return [
        _line(1, type="sync.succeeded", records=5),  # good
        _line(2, account_id="acct\u0000nul"),
        _line(3, integration="sales\u0000force"),
        _line(4, connection_id="c\u0000"),
        _line(5, event_id="e-5\u0000"),
        _line(6, account_id="acct\u001b[31m"),
        _line(7, account_id="acct\u0085"),
        _line(8, account_id="acct\x7f"),
        _line(
            9,
            error="boom\u0000 \u001b[0m\ttab\nline",
            properties={"message": "m\u0000", "nested": ["\u0007", {"k\u0001": "v"}]},
        ),
        b'{"event_id": "e-10", "type": "sync.failed\x00, not json',  # a literal 0x00 byte
        b'{"event_id": "e-11", "type": "sync.failed", "error": "raw \x00 in a string"}',
        _line(12, error="bad utf-8 here").replace(b"here", b"\xff\xfe here"),
        _line(13, account_id="acct-\udfff-end").replace(b"\\udfff", b"\\ud800"),
        _line(14, error="lone \\ud800 surrogate").replace(b"\\\\ud800", b"\\ud800"),
        _line(15, error=BIG),
        _line(16, properties={"message": BIG}),
        _line(17, account_id=BIG),
        _line(18, properties={f"k{i}": "y" * 1999 for i in range(40)}),
        _line(19, type="sync.succeeded", account_id="beta", records=1),  # good
    ]


# What each line becomes: the reasons (prefix) of the quarantined ones.
EXPECTED_REASONS = {
    2: "account_id contains a control character (U+0000",
    3: "integration contains a control character (U+0000",
    4: "connection_id contains a control character (U+0000",
    5: "event_id contains a control character (U+0000",
    6: "account_id contains a control character (U+001B",
    7: "account_id contains a control character (U+0085",
    8: "account_id contains a control character (U+007F",
    10: "not valid JSON",
    11: "not valid JSON",
    12: "not valid UTF-8 (byte 0xff",
    13: "account_id contains a lone surrogate (U+D800",
    17: "account_id is longer than 256 characters",
    18: "properties is larger than 64 KB",
}


def _dump(engine: Engine) -> dict[str, Any]:
    """Stored rows without what differs by arrival (time, source name)."""
    with engine.connect() as conn:
        events = []
        for row in conn.execute(select(Event.__table__)).mappings():
            item = dict(row)
            for volatile in ("received_at", "source"):
                item.pop(volatile)
            item["occurred_at"] = as_utc(item["occurred_at"]).isoformat()
            props = item["properties"]
            item["properties"] = json.loads(props) if isinstance(props, str) else props
            events.append(item)
        quarantine = [
            (r.line_no, r.reason, r.raw)
            for r in conn.execute(select(Quarantine.__table__)).all()
        ]
        accounts = sorted(conn.execute(select(Account.__table__.c.account_id)).scalars())
    return {
        "events": sorted(events, key=lambda e: e["event_id"]),
        "quarantine": sorted(quarantine),
        "accounts": accounts,
    }


def _by_file(url: str, path: Path) -> dict[str, Any]:
    from integration_signals.cli import app, commands  # noqa: F401

    result = CliRunner().invoke(
        app, ["ingest", str(path), "--json"], env={"SIGNALS_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _by_http(engine: Engine, start: Callable[[Any], str], body: bytes) -> dict[str, Any]:
    settings = Settings(signals_ingest_token=SecretStr(TOKEN), signals_database_url="unused")
    base = start(create_app(engine, load_config(None), settings))
    response = httpx.post(
        f"{base}/v1/events",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _check(dump: dict[str, Any], report: dict[str, Any]) -> None:
    assert (report["accepted"], report["duplicates"], report["quarantined"]) == (6, 0, 13)
    reasons = {line: reason for line, reason, _raw in dump["quarantine"]}
    assert sorted(reasons) == sorted(EXPECTED_REASONS)
    for line, prefix in EXPECTED_REASONS.items():
        assert reasons[line].startswith(prefix), (line, reasons[line])
    for _line_no, reason, raw in dump["quarantine"]:
        for text in (reason, raw):
            assert "\x00" not in text and "\ud800" not in text
    assert "\\u0000" in dict((q[0], q[2]) for q in dump["quarantine"])[10]
    events = {e["event_id"]: e for e in dump["events"]}
    assert sorted(events) == ["e-1", "e-14", "e-15", "e-16", "e-19", "e-9"]
    assert events["e-9"]["error"] == "boom\ufffd \ufffd[0m\ttab\nline"
    assert events["e-9"]["properties"] == {
        "message": "m\ufffd",
        "nested": ["\ufffd", {"k\ufffd": "v"}],
    }
    assert events["e-14"]["error"] == "lone \ufffd surrogate"
    assert events["e-15"]["error"] == "x" * 2000
    assert events["e-16"]["properties"] == {"message": "x" * 2000}
    assert dump["accounts"] == ["acme", "beta"]


def _databases(pg_url: str | None, tmp_path: Path) -> list[str]:
    urls = [f"sqlite:///{tmp_path / 'file.db'}"]
    if pg_url is not None:
        urls.append(pg_url)
    return urls


def test_a_hostile_file_stores_the_same_rows_by_file_and_by_http_on_every_database(
    _pg_database: str | None,
    tmp_path: Path,
    live_app: Callable[[Any], str],  # noqa: F811
) -> None:
    from tests.conftest import _truncate_all

    body = b"\n".join(hostile_lines()) + b"\n"
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(body)
    dumps: dict[str, dict[str, Any]] = {}
    for url in _databases(_pg_database, tmp_path):
        kind = "pg" if url.startswith("postgres") else "sqlite"
        if kind == "pg":
            _truncate_all(url)
        report = _by_file(url, path)
        engine = make_engine(url)
        dumps[f"{kind} file"] = _dump(engine)
        _check(dumps[f"{kind} file"], report)
        engine.dispose()

        http_url = url if kind == "pg" else f"sqlite:///{tmp_path / 'http.db'}"
        if kind == "pg":
            _truncate_all(url)
        engine = make_engine(http_url)
        report = _by_http(engine, live_app, body)
        dumps[f"{kind} http"] = _dump(engine)
        _check(dumps[f"{kind} http"], report)
        engine.dispose()
    first = next(iter(dumps.values()))
    for name, dump in dumps.items():
        assert dump == first, f"{name} differs from {next(iter(dumps))}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("a\x00b", "a\ufffdb"),
        ("keep\ttab\nnew\rcr", "keep\ttab\nnew\rcr"),
        ("del\x7f c1\x85", "del\ufffd c1\ufffd"),
        ("lone\ud800", "lone\ufffd"),
        ("nbsp\u00a0ok", "nbsp\u00a0ok"),
    ],
    ids=["plain", "nul", "whitespace-kept", "del-and-c1", "surrogate", "nbsp-kept"],
)
def test_free_text_keeps_whitespace_and_replaces_other_control_characters(
    text: str, expected: str
) -> None:
    from integration_signals.store.events import clean_text

    assert clean_text(text) == expected
