"""One evaluation: score the accounts and evaluate their signals at one clock, in one
pass over the store and one transaction.

Every caller that scores (``signals score``, serve's score job, rescoring after an
ingest, a replay's days, the demo cycle) goes through ``evaluate``. Scoring reads the
facts (``scoring.facts``) and scores; before anything is written, the signal rules
take the same facts in memory and read only what scoring's facts do not hold (the
last usage day of connections that may be abandoned, the daily API calls of accounts
at their limit); then the scores and the episodes, tasks and segments are written in
the same transaction, so a run is recorded whole or not at all.

Which accounts the rules see:
- a partial run (``account_ids``): exactly those;
- a run that rescored everyone (``full``, or everything was stale): everyone;
- an incremental run: the accounts it rescored, plus those whose rules the clock
  alone can have changed since the previous run, when that run evaluated every other
  account (see ``_skippable``). An account not rescored has the same facts as of the
  same UTC day as at the previous run (its data did not change and a new day makes
  every account stale), and all rules but three read whole days only. The three read
  the moment: the onboarding rules (days since ``created_at``) and the expansion
  window after the n-th activation (``integration_activated``). Their outcome for an
  unchanged account can only differ where ``created_at`` + a threshold, or a
  connection's ``activated_at`` + the window, lies between the two runs' moments:
  those accounts are read and evaluated too (``time_driven_accounts``). Otherwise
  (the previous run did not evaluate signals, another day, the feed_stale guard open
  before or now) the rules see everyone, as a full run does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection, Engine

from integration_signals.config import Config
from integration_signals.scoring.facts import AccountFacts, load_facts, load_facts_conn
from integration_signals.scoring.run import ScoringReport, no_gc, score_pass
from integration_signals.scoring.signal_facts import facts_from_scored, stored_ratings
from integration_signals.scoring.signals import (
    GuardState,
    SignalsReport,
    apply_rules,
    guard_state,
)
from integration_signals.store.models import Account, KeyValue, Signal
from integration_signals.store.models import Connection as ConnectionRow
from integration_signals.store.sql import as_utc, upsert, utcnow

# The scoring run whose signals were evaluated for every account (the last run of
# ``evaluate`` that was not partial): an incremental run may skip unchanged accounts
# only when its previous run is this one.
SIGNALS_RUN_KEY = "signals.evaluated_run"


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
    given) and evaluate the signal rules as of ``as_of``, in one pass and one
    transaction. Signals cover every account unless ``account_ids`` is given, either
    evaluated here or unchanged since the previous run (see the module docstring)."""
    as_of = as_utc(as_of) or utcnow()
    ids = None if account_ids is None else sorted(set(account_ids))
    planned: dict[str, Any] = {}
    with no_gc(), engine.begin() as conn:
        guard = guard_state(conn, config.signals, as_of=as_of, seen=feed_seen)

        def before_write(report: ScoringReport, facts: dict[str, AccountFacts]) -> None:
            clock = time.perf_counter()
            planned["facts"] = _signal_facts(
                conn, engine, config, report, facts, ids=ids, guard=guard, lifecycle=lifecycle
            )
            report.timings["signal_facts_seconds"] = time.perf_counter() - clock

        scored = score_pass(
            conn,
            engine,
            config,
            as_of=as_of,
            full=full,
            account_ids=ids,
            lifecycle=lifecycle,
            before_write=before_write,
        )
        clock = time.perf_counter()
        facts, scope = planned["facts"]
        signals = apply_rules(conn, config, facts, as_of=as_of, ids=scope, guard=guard)
        if ids is None and scope is not None:  # the others are unchanged since
            a = Account.__table__
            signals.accounts = conn.execute(select(func.count()).select_from(a)).scalar_one()
        if ids is None:
            mark_signals_run(conn, scored)
        scored.timings["signals_write_seconds"] = time.perf_counter() - clock
    return Evaluation(scored, signals)


def _signal_facts(
    conn: Connection,
    engine: Engine,
    config: Config,
    report: ScoringReport,
    facts: dict[str, AccountFacts],
    *,
    ids: list[str] | None,
    guard: GuardState,
    lifecycle: Any,
) -> tuple[list[Any], list[str] | None]:
    """The rules' facts and the accounts they cover (None: every account)."""
    as_of = report.as_of
    ratings = {aid: (s.band, s.stage) for aid, s in report.scores.items()}
    if ids is not None or report.everyone:
        return facts_from_scored(conn, config, facts, as_of=as_of, ratings=ratings), ids
    if _skippable(conn, report, guard):
        extra = sorted(
            time_driven_accounts(conn, config, report.previous.as_of, as_of) - set(facts)
        )
        if extra:
            more = load_facts_conn(
                conn, config, as_of=as_of.date(), account_ids=extra, lifecycle=lifecycle
            )
            ratings.update(stored_ratings(conn, list(more)))
            facts = {**facts, **more}
        scope = sorted(facts)
        return facts_from_scored(conn, config, facts, as_of=as_of, ratings=ratings), scope
    everyone = load_facts(engine, config, as_of=as_of.date(), lifecycle=lifecycle)
    everyone.update(facts)
    stored = stored_ratings(conn, None)
    stored.update(ratings)
    return facts_from_scored(conn, config, everyone, as_of=as_of, ratings=stored), None


def _skippable(conn: Connection, report: ScoringReport, guard: GuardState) -> bool:
    """Whether this incremental run may leave the accounts it did not rescore (and
    the clock did not touch) alone: the previous run evaluated every account's signals
    on the same UTC day, and the feed_stale guard is closed and stays closed (while
    it is open, risk episodes neither fire nor resolve: a closing guard needs every
    account)."""
    prev = report.previous
    if prev is None or guard.stale or guard.open_id is not None:
        return False
    prev_as_of = as_utc(prev.as_of)
    if prev_as_of is None or prev_as_of.date() != report.as_of.date():
        return False
    kv = KeyValue.__table__
    value = conn.execute(select(kv.c.value).where(kv.c.key == SIGNALS_RUN_KEY)).scalar_one_or_none()
    if not isinstance(value, dict):
        return False
    started = as_utc(prev.started_at)
    return value.get("run_id") == prev.id and value.get("started_at") == (
        started.isoformat() if started else None
    )


def mark_signals_run(conn: Connection, report: ScoringReport) -> None:
    """Record that the signals of every account are evaluated as of ``report``'s run
    (the run id with its start: ids can be reused after a replay's rewind)."""
    started = as_utc(report.started_at)
    upsert(
        conn,
        KeyValue.__table__,
        [
            {
                "key": SIGNALS_RUN_KEY,
                "value": {
                    "run_id": report.run_id,
                    "started_at": started.isoformat() if started else None,
                    "as_of": report.as_of.isoformat(),
                },
                "updated_at": utcnow(),
            }
        ],
        keys=["key"],
        update=lambda ex: {"value": ex.value, "updated_at": ex.updated_at},
    )


def time_driven_accounts(
    conn: Connection, config: Config, since: datetime, until: datetime
) -> set[str]:
    """Accounts for which a rule that reads the moment (not only the day) can have a
    different outcome at ``until`` than at ``since`` with the same data: days since
    ``created_at`` crossing an onboarding threshold, or days since the n-th
    activation crossing the expansion window.

    The expansion episode only ends as the clock moves forward (the days since an
    activation only grow): forward, the accounts with an open ``integration_activated``
    episode are the candidates (a handful, not every connection); backward, any
    connection whose ``activated_at`` + the window lies between the two moments."""
    since_utc, until_utc = as_utc(since) or until, as_utc(until) or until
    lo, hi = sorted((since_utc, until_utc))
    if lo == hi:
        return set()
    sc = config.signals
    a = Account.__table__

    def crossing(column: Any, days: int) -> Any:
        # (now - t).days >= days flips between lo and hi iff lo < t + days <= hi
        return (column > lo - timedelta(days=days)) & (column <= hi - timedelta(days=days))

    onboarding = sc.onboarding
    thresholds = sorted(
        {onboarding.first_sync_by_day, onboarding.active_by_day, onboarding.period_days}
    )
    found = set(
        conn.execute(
            select(a.c.account_id).where(or_(*(crossing(a.c.created_at, t) for t in thresholds)))
        ).scalars()
    )
    if until_utc > since_utc:
        s = Signal.__table__
        expansion = select(s.c.account_id).where(
            s.c.status == "open", s.c.kind == "integration_activated"
        )
    else:
        c = ConnectionRow.__table__
        window = sc.integration_activated.window_days
        expansion = select(c.c.account_id).where(crossing(c.c.activated_at, window))
    found.update(conn.execute(expansion.distinct()).scalars())
    return found
