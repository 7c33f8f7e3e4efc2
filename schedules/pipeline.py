"""What follows an ingest, whichever way the events came (CLI, HTTP, SQL pull): rescore
the accounts the events touched and evaluate their signals at once, so an event
becomes a task within a minute instead of waiting for the next scheduled score run.

The one failure policy for it lives here too: the events are committed before this
runs, so a failure is logged and reported, never raised; ingest marked the accounts
changed in the store, and the next score run rescores them."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from integration_signals.config import Config
from integration_signals.scoring.evaluation import evaluate
from integration_signals.store.ingest import IngestReport

log = logging.getLogger("signals.pipeline")


def summary(report: Any) -> Any:
    """A report object as short JSON-ready data: its ``as_json()`` with every list or
    mapping inside replaced by its length (a log line, not the whole report)."""
    if report is None or isinstance(report, str | int | float):
        return report
    data = report.as_json() if hasattr(report, "as_json") else report
    if not isinstance(data, dict):
        return str(data)[:200]
    return {k: len(v) if isinstance(v, list | dict | set) else v for k, v in data.items()}


def error_line(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"


def after_ingest(
    engine: Engine, config: Config, report: IngestReport, *, now: datetime
) -> dict[str, Any]:
    """Rescore the accounts ``report`` touched and evaluate their signals as of ``now``.

    Never raises: a failure is logged and answered as ``{"error": ...}`` (the events are
    stored; the score job rescores the accounts ingest marked changed)."""
    accounts = sorted(report.touched_accounts)
    result: dict[str, Any] = {"accounts": len(accounts), "rescored": 0}
    if not accounts:
        return result
    try:
        done = evaluate(engine, config, as_of=now, account_ids=accounts)
        result["rescored"] = len(done.scoring.rescored)
        result["signals"] = summary(done.signals)
    except Exception as exc:  # the events are in: report, and let the score job catch up
        error = error_line(exc)
        log.error(
            "events stored, but rescoring the %d accounts they touched failed (the next"
            " score run rescores them): %s",
            len(accounts),
            error,
        )
        return {"accounts": len(accounts), "error": error}
    log.info("after ingest: %d accounts touched, %s rescored", len(accounts), result["rescored"])
    return result
