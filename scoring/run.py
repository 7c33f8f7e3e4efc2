"""Scoring runs: which accounts to rescore, score them, write the results back.

Incremental by default. An account is rescored when
- it has no score yet, or its score is of another as-of day (time alone moved its
  windows: idle days, days since a good sync, onboarding days) or another config;
- its data changed since the last run (``accounts.data_changed_at`` after the data
  watermark that run saw, or at/after the moment it started).
``full=True`` rescores every account; ``account_ids`` rescores exactly those. Either
way the result equals a full run at the same as-of day, because a score is a pure
function of the data and the as-of day. Percentiles within each segment are
recomputed for everyone from the stored component scores (cheap: numpy over
integers) and written only where they changed.
"""

from __future__ import annotations

import gc
import time as _time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, Text, cast, func, or_, select

from integration_signals.config import COMPONENTS, Config
from integration_signals.scoring.facts import AccountFacts, load_facts, load_facts_conn
from integration_signals.scoring.score import Score, score
from integration_signals.store.bulk import Bulk
from integration_signals.store.models import Account, AccountScore, ScoringRun
from integration_signals.store.sql import as_utc, utcnow

PERCENTILE_KEYS = (*COMPONENTS, "score")


@dataclass
class ScoringReport:
    """What one scoring run did."""

    as_of: datetime
    full: bool
    rescored: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    accounts: int = 0
    percentiles_updated: int = 0
    run_id: int | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    scores: dict[str, Score] = field(default_factory=dict)
    # The facts of every account, when this run loaded them all (a full or all-stale
    # run): signal evaluation at the same as_of can reuse them instead of reloading.
    all_facts: dict[str, AccountFacts] | None = None
    # Whether every account was rescored (a full or all-stale run, not a partial one).
    everyone: bool = False
    # The latest earlier run with a watermark (id, watermark, started_at, as_of) that
    # an incremental run compared against; None for partial runs and the first run.
    previous: Any = None
    started_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "full": self.full,
            "accounts": self.accounts,
            "rescored": len(self.rescored),
            "changed": len(self.changed),
            "created": len(self.created),
            "percentiles_updated": self.percentiles_updated,
            "run_id": self.run_id,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _previous_run(conn: Any) -> Any:
    """The latest run that recorded a data watermark (not a partial one): id,
    watermark, started_at and as_of; None before the first."""
    r = ScoringRun.__table__
    return conn.execute(
        select(r.c.id, r.c.watermark, r.c.started_at, r.c.as_of)
        .where(r.c.watermark.is_not(None))
        .order_by(r.c.id.desc())
        .limit(1)
    ).first()


def _stale_accounts(conn: Any, config: Config, day: date, prev: Any = None) -> list[str]:
    """Accounts an incremental run must rescore (see the module docstring); ``prev``:
    ``_previous_run``."""
    a = Account.__table__
    s = AccountScore.__table__
    lo, hi = day_bounds(day)
    conds = [
        s.c.account_id.is_(None),
        s.c.as_of < lo,
        s.c.as_of >= hi,
        s.c.config_version.is_(None),
        s.c.config_version != config.version,
    ]
    if prev is not None:
        conds.append(a.c.data_changed_at > prev.watermark)
        conds.append(a.c.data_changed_at >= prev.started_at)
    else:
        conds.append(a.c.account_id.is_not(None))
    stmt = (
        select(a.c.account_id)
        .select_from(a.outerjoin(s, s.c.account_id == a.c.account_id))
        .where(or_(*conds))
    )
    return list(conn.execute(stmt).scalars())


def score_accounts(
    engine: Engine,
    config: Config,
    *,
    as_of: datetime,
    full: bool = False,
    account_ids: Iterable[str] | None = None,
    lifecycle: Any = None,
) -> ScoringReport:
    """Rescore what can have changed (all with ``full``, exactly ``account_ids`` when
    given) as of ``as_of``'s UTC day and write account_scores, score_history,
    connection states and a scoring_runs record. ``lifecycle``: a replay's
    ``LifecycleHistory`` (see ``scoring.facts.load_facts``)."""
    with no_gc(), engine.begin() as conn:
        return score_pass(
            conn,
            engine,
            config,
            as_of=as_of,
            full=full,
            account_ids=account_ids,
            lifecycle=lifecycle,
        )


@contextmanager
def no_gc() -> Iterator[None]:
    """Millions of short-lived objects and no cycles: the cyclic GC would only
    re-walk them over and over."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc_was_enabled:
            gc.enable()


def score_pass(
    conn: Any,
    engine: Engine,
    config: Config,
    *,
    as_of: datetime,
    full: bool = False,
    account_ids: Iterable[str] | None = None,
    lifecycle: Any = None,
    before_write: Callable[[ScoringReport, dict[str, AccountFacts]], None] | None = None,
) -> ScoringReport:
    """One scoring run inside the caller's transaction ``conn`` (``engine`` serves the
    parallel rollup passes of a run over everyone). ``before_write`` sees the report
    and the facts of the accounts rescored after scoring and before anything is
    written: ``scoring.evaluation`` reads what the signal rules add to the same facts
    there, so the write lock is held only while writing."""
    clock = _time.perf_counter()
    as_of = as_utc(as_of) or utcnow()
    day = as_of.date()
    started = utcnow()
    report = ScoringReport(as_of=as_of, full=full)
    partial = account_ids is not None
    a = Account.__table__
    watermark = conn.execute(select(func.max(a.c.data_changed_at))).scalar_one()
    watermark = as_utc(watermark) or datetime.min.replace(tzinfo=UTC)
    if partial:
        targets: list[str] | None = sorted(set(account_ids or ()))
    elif full:
        targets = None
        report.previous = _previous_run(conn)
    else:
        report.previous = prev = _previous_run(conn)
        targets = _stale_accounts(conn, config, day, prev)
        total = conn.execute(select(func.count()).select_from(a)).scalar_one()
        if len(targets) >= total:
            targets = None
    report.timings["select"] = _time.perf_counter() - clock
    if targets is None:
        facts = load_facts(engine, config, as_of=day, lifecycle=lifecycle)
        report.all_facts = facts
    elif targets:
        facts = load_facts_conn(conn, config, as_of=day, account_ids=targets, lifecycle=lifecycle)
    else:
        facts = {}
    report.timings["read"] = _time.perf_counter() - clock
    scores = {aid: score(f, config.scoring) for aid, f in facts.items()}
    report.timings["score"] = _time.perf_counter() - clock
    report.scores = scores
    report.rescored = sorted(scores)
    report.everyone = not partial and targets is None
    if before_write is not None:
        before_write(report, facts)
        report.timings["before_write"] = _time.perf_counter() - clock
    _write(
        conn,
        config,
        report,
        facts,
        scores,
        as_of=as_of,
        scored_at=started,
        everyone=targets is None,
    )
    report.timings["write"] = _time.perf_counter() - clock
    if not report.accounts:
        report.accounts = conn.execute(
            select(func.count()).select_from(AccountScore.__table__)
        ).scalar_one()
    run = ScoringRun.__table__
    report.run_id = conn.execute(
        run.insert()
        .values(
            as_of=as_of,
            started_at=started,
            finished_at=utcnow(),
            full=targets is None,
            rescored=len(report.rescored),
            changed=len(report.changed),
            config_version=config.version,
            watermark=None if partial else watermark,
        )
        .returning(run.c.id)
    ).scalar_one()
    report.started_at = started
    report.full = not partial and targets is None
    report.seconds = _time.perf_counter() - clock
    return report


_SCORE_COLUMNS = (
    "account_id",
    "as_of",
    "scored_at",
    "score",
    "band",
    "stage",
    "components",
    "reason",
    "active_integrations",
    "percentiles",
    "config_version",
    "inputs_hash",
    "details",
    "segments",
)
_HISTORY_COLUMNS = (
    "account_id",
    "as_of",
    "scored_at",
    "score",
    "band",
    "stage",
    "components",
    "config_version",
)


def _read_stored(conn: Any, *, with_components: bool) -> dict[str, tuple[Any, ...]]:
    """(segment, component scores, percentiles, fingerprint, score) of every scored
    account. Component scores come from the small ``details.component_scores`` copy,
    not from parsing every (large) components document."""
    s = AccountScore.__table__
    a = Account.__table__
    # JSON as text, parsed here with orjson (PostgreSQL's driver would parse json
    # columns itself, with the slower json module), and only the component scores.
    cols = [
        s.c.account_id,
        cast(s.c.percentiles, Text),
        s.c.inputs_hash,
        a.c.segment,
        s.c.score,
        cast(s.c.details["component_scores"], Text) if with_components else s.c.score,
    ]
    stored: dict[str, tuple[Any, ...]] = {}
    for aid, percentiles, fingerprint, segment, value, components in conn.execute(
        select(*cols).select_from(s.join(a, a.c.account_id == s.c.account_id))
    ):
        stored[aid] = (
            segment,
            _loads(components) if with_components else None,
            _loads(percentiles),
            fingerprint,
            value,
        )
    return stored


def _loads(value: Any) -> Any:
    if value is None or not isinstance(value, str | bytes):
        return value
    return orjson.loads(value)


def _write(
    conn: Any,
    config: Config,
    report: ScoringReport,
    facts: dict[str, AccountFacts],
    scores: dict[str, Score],
    *,
    as_of: datetime,
    scored_at: datetime,
    everyone: bool,
) -> None:
    """Write what the run found: changed and new score rows (segments only on insert),
    history for changes, percentiles that moved, connection states that changed."""
    if not scores:
        return
    stored = _read_stored(conn, with_components=not everyone)
    report.accounts = len(set(stored) | set(scores))
    percentiles = _percentiles(config, stored, scores)
    bulk = Bulk(conn)
    ts_as_of, ts_scored = bulk.ts(as_of), bulk.ts(scored_at)
    upserts, same_ids, history = [], [], []
    for aid, sc in scores.items():
        fp = sc.fingerprint()
        old = stored.get(aid)
        if old is not None and old[3] == fp:
            same_ids.append(aid)
            continue
        if old is None:
            report.created.append(aid)
        report.changed.append(aid)
        upserts.append(
            (
                aid,
                ts_as_of,
                ts_scored,
                sc.score,
                sc.band,
                sc.stage,
                bulk.json(sc.components),
                sc.reason,
                sc.active_integrations,
                bulk.json(percentiles.get(aid)),
                config.version,
                fp,
                bulk.json(sc.details),
                "[]",
            )
        )
        history.append(
            (
                aid,
                ts_as_of,
                ts_scored,
                sc.score,
                sc.band,
                sc.stage,
                bulk.json({n: c["score"] for n, c in sc.components.items()}),
                config.version,
            )
        )
    report.changed.sort()
    bulk.upsert_many(
        "account_scores",
        _SCORE_COLUMNS,
        upserts,
        conflict="account_id",
        # segments belong to the signals layer: set on insert, never overwritten
        updates={c: f"excluded.{c}" for c in _SCORE_COLUMNS[1:-1]},
    )
    bulk.update_many(
        "account_scores",
        "account_id",
        ("as_of", "scored_at", "config_version"),
        [(ts_as_of, ts_scored, config.version, aid) for aid in sorted(same_ids)],
    )
    # Percentiles move for accounts whose score did not change too: write where they did.
    unchanged = set(same_ids)
    moved = [
        (bulk.json(pct), aid)
        for aid, pct in percentiles.items()
        if aid in stored and (aid not in scores or aid in unchanged) and stored[aid][2] != pct
    ]
    bulk.update_many("account_scores", "account_id", ("percentiles",), moved)
    report.percentiles_updated = len(moved)
    bulk.insert_many("score_history", _HISTORY_COLUMNS, history)
    states = [
        (f.state, ts_as_of, f.connection_id)
        for account in facts.values()
        for f in account.connections
        if f.stored_state != f.state
    ]
    bulk.update_many("connections", "connection_id", ("state", "state_as_of"), states)


def _percentiles(
    config: Config,
    stored: dict[str, tuple[Any, ...]],
    scores: dict[str, Score],
) -> dict[str, dict[str, Any]]:
    """Each account's percentile rank within its segment, per component and overall:
    the share of peers scoring lower plus half of those scoring the same, 0-100."""
    import numpy as np  # here: `signals health` reads stored percentiles without numpy

    default = config.scoring.default_segment
    segments = set(config.scoring.activation)
    by_segment: dict[str, list[tuple[str, list[int]]]] = defaultdict(list)
    for aid, (segment, components, _pct, _fp, value) in stored.items():
        if aid in scores or not components:
            continue
        seg = segment if segment in segments else default
        values = [int(components.get(n) or 0) for n in COMPONENTS]
        values.append(int(value))
        by_segment[seg].append((aid, values))
    for aid, sc in scores.items():
        values = [int(sc.components[n]["score"]) for n in COMPONENTS]
        values.append(sc.score)
        by_segment[sc.segment].append((aid, values))
    out: dict[str, dict[str, Any]] = {}
    for seg, rows in by_segment.items():
        matrix = np.array([v for _aid, v in rows], dtype=np.int64).clip(0, 100)
        n = len(rows)
        tables = []
        for k in range(matrix.shape[1]):
            counts = np.bincount(matrix[:, k], minlength=101)
            below = np.concatenate(([0], np.cumsum(counts)[:-1]))
            # half-up rounding of 100 * (below + equal/2) / n, in integers
            tables.append((100 * (2 * below + counts) + n) // (2 * n))
        for i, (aid, _values) in enumerate(rows):
            pct: dict[str, Any] = {
                key: int(tables[k][matrix[i, k]]) for k, key in enumerate(PERCENTILE_KEYS)
            }
            pct["segment"] = seg
            pct["peers"] = n
            out[aid] = pct
    return out


def current_scores(engine: Engine) -> list[dict[str, Any]]:
    """Every account's current score row (rescored this run or not), by account id."""
    s = AccountScore.__table__
    a = Account.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                s.c.account_id,
                a.c.name,
                a.c.segment,
                a.c.csm,
                a.c.owner,
                s.c.score,
                s.c.band,
                s.c.stage,
                s.c.reason,
                s.c.active_integrations,
                s.c.components,
                s.c.segments,
                s.c.percentiles,
                s.c.as_of,
                s.c.scored_at,
            )
            .select_from(s.join(a, a.c.account_id == s.c.account_id))
            .order_by(s.c.account_id)
        ).mappings()
        return [{**r, "segments": r["segments"] or []} for r in rows]
