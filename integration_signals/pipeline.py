"""What follows an ingest, whichever way the events came (CLI, HTTP, SQL pull): rescore
the accounts the events touched and evaluate their signals at once, so an event
becomes a task within a minute instead of waiting for the next scheduled score run."""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from types import ModuleType
from typing import Any

from sqlalchemy import Engine

from integration_signals.settings import Config
from store.ingest import IngestReport

log = logging.getLogger("signals.pipeline")


def optional_layer(module: str) -> ModuleType | None:
    """A layer module, or None when that layer is not part of this installation
    (a missing dependency *inside* an installed layer still raises)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise


def summary(report: Any) -> Any:
    """A report object as short JSON-ready data: its ``as_json()`` with every list or
    mapping inside replaced by its length (a log line, not the whole report)."""
    if report is None or isinstance(report, str | int | float):
        return report
    data = report.as_json() if hasattr(report, "as_json") else report
    if not isinstance(data, dict):
        return str(data)[:200]
    return {k: len(v) if isinstance(v, list | dict | set) else v for k, v in data.items()}


def after_ingest(
    engine: Engine, config: Config, report: IngestReport, *, now: datetime
) -> dict[str, Any]:
    """Rescore the accounts ``report`` touched and evaluate their signals as of ``now``."""
    accounts = sorted(report.touched_accounts)
    result: dict[str, Any] = {"accounts": len(accounts), "rescored": 0}
    if not accounts:
        return result
    scoring = optional_layer("scoring.run")
    signals = optional_layer("scoring.signals")
    if scoring is None:
        result["rescored"] = None
        result["skipped"] = "the scoring layer is not installed"
        return result
    scored = scoring.score_accounts(engine, config, as_of=now, account_ids=accounts)
    result["rescored"] = len(scored.rescored)
    if signals is not None:
        evaluated = signals.evaluate_signals(engine, config, as_of=now, account_ids=accounts)
        result["signals"] = summary(evaluated)
    log.info("after ingest: %d accounts touched, %s rescored", len(accounts), result["rescored"])
    return result
