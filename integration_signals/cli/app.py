"""The typer app every command registers on: loads settings once and keeps the CLI
conventions (SPEC section 8): --json prints exactly one document on stdout, exit 0
done / 1 failed / 2 usage.

How `signals --help` reads is decided here, once, for every command: the task panels
and their order (``PANELS``), and boolean options shown as flags (``--json``, not
``--json <bool>``). Command modules only register commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_name

from integration_signals import __version__
from integration_signals.cli.runtime import Runtime, run_guarded

# Help panels in the order a new user needs them; commands within a panel in this order.
PANELS: dict[str, tuple[str, ...]] = {
    "Data": ("demo", "init", "ingest", "accounts", "quarantine"),
    "Scores": ("score", "replay", "health", "funnel", "retention", "ttv"),
    "Signals & tasks": ("signals", "tasks"),
    "CRM": ("sync", "provision"),
    "Slack": ("bot",),
    "Serve": ("serve", "users"),
    "Analysis": ("impact", "backtest", "model"),
}
PANEL_OF = {name: panel for panel, names in PANELS.items() for name in names}
ORDER = {name: i for i, name in enumerate(PANEL_OF)}


def _flags_as_flags(params: list[Any]) -> list[Any]:
    """typer's rich help prints a flag's type (``<bool>``) beside it; a flag takes no
    value, so it gets an empty metavar and shows as the flag alone."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose help shows boolean options as flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_as_flags(super().get_params(ctx))


class Group(TyperGroup):
    """A group whose help shows boolean options as flags and lists its commands in
    ``PANELS`` order (the others after them, as registered)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_as_flags(super().get_params(ctx))

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: (ORDER.get(n, len(ORDER)), names.index(n)))


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"signals {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="signals",
    cls=Group,
    help="Integration Signals: which customers' integrations really work, and acting on it.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_show_version,
        help="Print the version and exit.",
    ),
) -> None:
    runtime = Runtime()
    run_guarded(lambda: runtime.config)  # refuse a bad config at start-up
    ctx.obj = runtime


def arrange(typer_app: typer.Typer = app) -> None:
    """Give every registered command and group its help panel and the classes above
    (called once all command modules have registered; sub-apps recursively)."""
    top = typer_app is app
    for info in typer_app.registered_commands:
        if info.cls in (None, TyperCommand):  # typer's default
            info.cls = Command
        name = info.name or (info.callback and get_command_name(info.callback.__name__))
        if top and not isinstance(info.rich_help_panel, str) and name in PANEL_OF:
            info.rich_help_panel = PANEL_OF[name]
    for group in typer_app.registered_groups:
        if group.typer_instance is None:
            continue
        if group.typer_instance.info.cls in (None, TyperGroup) or not isinstance(
            group.typer_instance.info.cls, type
        ):  # typer's default (a placeholder)
            group.typer_instance.info.cls = Group
        if top and isinstance(group.name, str) and group.name in PANEL_OF:
            group.rich_help_panel = PANEL_OF[group.name]
        arrange(group.typer_instance)


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
