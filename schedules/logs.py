"""Logging for `signals serve`: human lines or JSON lines, secrets blanked either way.

``[log] format = "json"`` (or ``SIGNALS_LOG_FORMAT=json``) writes one JSON object per
line: ``time``, ``level``, ``logger``, ``message`` and the context fields ``job``,
``destination``, ``account`` and ``run_id`` when they are known. A log call gives them
with ``extra={"account": ...}``; the scheduler sets ``job`` and ``run_id`` around a job
run (``log_context``), the sync jobs ``destination``, so every line a job writes, in
any layer, carries them without that layer knowing.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

CONTEXT_FIELDS = ("job", "destination", "account", "run_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_context: ContextVar[dict[str, Any] | None] = ContextVar("signals_log_context", default=None)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add context fields to every log line written in this block (this thread or
    task); nested blocks add to the outer one's."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get() or {})


class _Redacting(logging.Formatter):
    def __init__(self, secrets: Iterable[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        # Longest first, so a secret that contains another is blanked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


class TextFormatter(_Redacting):
    """``time LEVEL logger: message``, secrets blanked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__(secrets, TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(_Redacting):
    """One JSON object per record; every string it writes has the secrets blanked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__(secrets)

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        context = _context.get() or {}
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = context.get(name)
            if value is not None:
                data[name] = self.redact(value) if isinstance(value, str) else value
        if record.exc_info:
            data["exc"] = self.redact(self.formatException(record.exc_info))
        return orjson.dumps(data, default=str).decode()


def configure_logging(
    fmt: str = "text", *, secrets: Iterable[str] = (), level: str = "info"
) -> None:
    """Our one stderr handler on the root logger, in ``fmt`` (``text`` or ``json``);
    called again it changes the format of the same handler."""
    secrets = list(secrets)
    formatter: logging.Formatter = (
        JsonFormatter(secrets) if fmt == "json" else TextFormatter(secrets)
    )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_signals", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._signals = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(formatter)
    root.setLevel(level.upper())
    # The scheduler's error listener writes one line per skipped or failed run.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)
