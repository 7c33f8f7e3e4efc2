"""`signals serve`: the scheduler, the ingest API, Slack endpoints and health in one process."""

from __future__ import annotations

import os
import sys

import typer

from integration_signals.cli.app import app, guarded, runtime
from integration_signals.cli.runtime import UserError


@app.command()
@guarded
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Listen address (config: serve.host)."),
    port: int | None = typer.Option(
        None, "--port", help="Listen port (config: serve.port; 0 picks a free one)."
    ),
) -> None:
    """Run the scheduler, the HTTP ingest API, Slack endpoints and /healthz until
    SIGTERM or Ctrl-C. Several processes may share one PostgreSQL database."""
    from integration_signals.schedules.locks import AlreadyServing
    from integration_signals.schedules.server import serve as run

    rt = runtime(ctx)
    cfg = rt.config.serve
    try:
        leftovers = run(
            rt.engine,
            rt.config,
            rt.settings,
            host=host or cfg.host,
            port=cfg.port if port is None else port,
        )
    except AlreadyServing as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(str(exc)) from None
    if leftovers:
        # A job thread that did not stop in the grace period would keep the
        # interpreter alive; its run is recorded as abandoned and its open
        # transaction rolls back when the process exits.
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(0)
