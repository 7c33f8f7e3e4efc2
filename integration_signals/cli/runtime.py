"""What every command shares: settings, config, the engine, output and errors.

Imported by every command, including `signals --help`: it imports nothing heavy
(pydantic, SQLAlchemy, the layers) at module level; each is imported where it is used,
so a command pays only for what it touches.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from integration_signals.config import Config, RedactingFilter, Settings

stderr = Console(stderr=True, highlight=False)
# typer's usage errors (BadParameter and kin): click reports them and exits 2.
_UsageError = typer.BadParameter.__mro__[1]


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit 1."""


def parse_as_of(value: str | None) -> datetime:
    """``--as-of``: an RFC 3339 timestamp or a date (midnight UTC); default now."""
    if value is None or value == "" or value == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a timestamp; use e.g. 2026-11-20T08:00:00Z or 2026-11-20",
            param_hint="--as-of",
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_gc_paused = False


def pause_gc_for_start_up(*, at_most: float = 2.0) -> None:
    """Hold the cyclic garbage collector while a command starts (the entry point calls
    this; tests that drive the app in-process do not).

    Start-up only creates what lives until exit: modules, classes, SQLAlchemy and
    pydantic schemas, about a million objects. Collecting while they are made, and once
    more over all of them when the interpreter exits, cost `signals health` about 40%
    of its CPU. The collector comes back (``resume_gc``), with everything made so far
    frozen out of its scans, when the command opens the database (its imports are done
    by then) or after ``at_most`` seconds, whichever is first, so a long-running command
    collects as usual."""
    global _gc_paused
    if _gc_paused or not gc.isenabled():
        return
    gc.disable()
    _gc_paused = True
    timer = threading.Timer(at_most, resume_gc)
    timer.daemon = True
    timer.start()
    atexit.register(gc.freeze)  # the exit's collection skips the long-lived objects


def resume_gc() -> None:
    """Freeze what start-up made and collect as usual from here on (idempotent)."""
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.freeze()
        gc.enable()


def _settings() -> Settings:
    from integration_signals.config import Settings

    return Settings()


@dataclass
class Runtime:
    """Settings and lazily created resources for one CLI invocation."""

    settings: Settings = field(default_factory=_settings)

    @cached_property
    def config(self) -> Config:
        """The TOML config, with every destination's ``[syncs.<name>]`` table validated
        by the destination (config sits below the syncs layer and cannot know them)."""
        from integration_signals.syncs.registry import validate_config

        config = self.settings.config
        validate_config(config, self.settings.config_source)
        install_redaction(self.settings)  # the destinations are known from here on
        return config

    @cached_property
    def engine(self) -> Engine:
        from integration_signals.store.engine import make_engine

        engine = make_engine(self.settings.database_url)
        resume_gc()  # the command's imports are done: its real work starts here
        return engine


_redaction: RedactingFilter | None = None


def install_redaction(settings: Settings) -> None:
    """Redact every log record and every printed result of this process by value of
    ``settings``' secrets (``Settings.redact``), whatever a vendor echoed back."""
    global _redaction
    from integration_signals.config import RedactingFilter

    _redaction = RedactingFilter(settings)
    _redaction.install()


def _redacted(text: str) -> str:
    if _redaction is None:
        return text
    return _redaction.settings.redact(text) or text


def emit(data: Any, *, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print a command's result: exactly one JSON document on stdout with --json,
    otherwise the human rendering; either way redacted of every secret value."""
    from integration_signals.store.jsonio import dumps

    text = dumps(data)
    clean = _redacted(text)
    if as_json or render is None:
        sys.stdout.write(clean + "\n")
        sys.stdout.flush()
    else:
        render(data if clean == text else json.loads(clean))


def fail(message: str, code: int = 1) -> NoReturn:
    message = _redacted(message)
    stderr.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def known_errors() -> tuple[type[BaseException], ...]:
    from integration_signals.bot.client import SlackNotConfigured
    from integration_signals.config import ConfigError
    from integration_signals.store.accounts import BadAccount
    from integration_signals.store.engine import DatabaseError

    return (UserError, ConfigError, DatabaseError, BadAccount, SlackNotConfigured)


def run_guarded(func: Callable[[], Any]) -> Any:
    """Turn expected failures into one line and exit 1; show tracebacks only when
    SIGNALS_DEBUG is set."""
    try:
        return func()
    except (typer.Exit, typer.Abort, SystemExit, KeyboardInterrupt, _UsageError):
        raise  # a usage error (e.g. a bad --as-of) exits 2 through click
    except known_errors() as exc:
        fail(str(exc))
    except Exception as exc:  # the one place broad exceptions become a line
        if os.environ.get("SIGNALS_DEBUG"):
            raise
        fail(
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            " (unexpected; rerun with SIGNALS_DEBUG=1 for the traceback)"
        )
