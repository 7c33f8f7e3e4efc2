"""One evaluation: score the accounts and evaluate their signals at one clock.

Every caller that scores (``signals score``, serve's score job, rescoring after an
ingest) goes through ``evaluate``, so how the two halves share the store's facts is
decided here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from integration_signals.config import Config
from integration_signals.scoring.run import ScoringReport, score_accounts
from integration_signals.scoring.signals import SignalsReport, evaluate_signals


@dataclass
class Evaluation:
    scoring: ScoringReport
    signals: SignalsReport


def evaluate(
    engine: Engine,
    config: Config,
    *,
    as_of: datetime,
    full: bool = False,
    account_ids: Iterable[str] | None = None,
    lifecycle: Any = None,
    feed_seen: Callable[[Connection, datetime], datetime | None] | None = None,
) -> Evaluation:
    """Score (what can have changed, all with ``full``, exactly ``account_ids`` when
    given) and evaluate the signal rules as of ``as_of``. Signals cover every account
    unless ``account_ids`` is given: time alone can start or end an episode."""
    ids = None if account_ids is None else sorted(set(account_ids))
    scored = score_accounts(
        engine, config, as_of=as_of, full=full, account_ids=ids, lifecycle=lifecycle
    )
    signals = evaluate_signals(
        engine,
        config,
        as_of=as_of,
        account_ids=ids,
        scored_facts=scored.all_facts if ids is None else None,
        feed_seen=feed_seen,
    )
    return Evaluation(scored, signals)
