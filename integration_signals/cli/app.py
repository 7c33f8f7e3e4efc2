"""The typer app every command registers on: loads settings once and keeps the CLI
conventions (SPEC section 8): --json prints exactly one document on stdout, exit 0
done / 1 failed / 2 usage."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from integration_signals.cli.runtime import Runtime, run_guarded

app = typer.Typer(
    name="signals",
    help="Integration Signals: which customers' integrations really work, and acting on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    runtime = Runtime()
    run_guarded(lambda: runtime.config)  # refuse a bad config at start-up
    ctx.obj = runtime


def guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command so expected errors become one line and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run_guarded(lambda: func(*args, **kwargs))

    return wrapper


def runtime(ctx: typer.Context) -> Runtime:
    obj = ctx.find_root().obj
    assert isinstance(obj, Runtime)
    return obj
