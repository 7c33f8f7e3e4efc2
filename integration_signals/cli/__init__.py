"""The `signals` command line: the top layer. It composes the layers below; each
layer's commands live in `commands/`, registered on the app in `app.py`."""

from __future__ import annotations

from integration_signals.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    from integration_signals.cli.runtime import pause_gc_for_start_up

    pause_gc_for_start_up()
    from integration_signals.cli import commands  # noqa: F401  (registers every command)

    app(prog_name="signals")  # also under `python -m integration_signals`
