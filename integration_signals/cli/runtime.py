"""What every command shares: settings, config, the engine, output and errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy import Engine

from integration_signals.config import Config, ConfigError, Settings
from integration_signals.store.jsonio import dumps

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


@dataclass
class Runtime:
    """Settings and lazily created resources for one CLI invocation."""

    settings: Settings = field(default_factory=Settings)

    @cached_property
    def config(self) -> Config:
        """The TOML config, with every destination's ``[syncs.<name>]`` table validated
        by the destination (config sits below the syncs layer and cannot know them)."""
        from integration_signals.syncs.registry import validate_config

        config = self.settings.config
        validate_config(config, self.settings.config_source)
        return config

    @cached_property
    def engine(self) -> Engine:
        from integration_signals.store.engine import make_engine

        return make_engine(self.settings.database_url)


def emit(data: Any, *, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print a command's result: exactly one JSON document on stdout with --json,
    otherwise the human rendering."""
    if as_json or render is None:
        sys.stdout.write(dumps(data) + "\n")
        sys.stdout.flush()
    else:
        render(data)


def fail(message: str, code: int = 1) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def known_errors() -> tuple[type[BaseException], ...]:
    from integration_signals.bot.client import SlackNotConfigured
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
