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

import time as _time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, bindparam, func, or_, select

from integration_signals.settings import COMPONENTS, Config
from scoring.facts import AccountFacts, load_facts_conn
from scoring.score import Score, score
from store.models import Account, AccountScore, Connection, ScoreHistory, ScoringRun
from store.sql import as_utc, chunked, utcnow

_CHUNK = 500
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
    scores: dict[str, Score] = field(default_factory=dict)

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
        }


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _stale_accounts(conn: Any, config: Config, day: date) -> list[str]:
    """Accounts an incremental run must rescore (see the module docstring)."""
    a = Account.__table__
    s = AccountScore.__table__
    r = ScoringRun.__table__
    prev = conn.execute(
        select(r.c.watermark, r.c.started_at)
        .where(r.c.watermark.is_not(None))
        .order_by(r.c.id.desc())
        .limit(1)
    ).first()
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
) -> ScoringReport:
    """Rescore what can have changed (all with ``full``, exactly ``account_ids`` when
    given) as of ``as_of``'s UTC day and write account_scores, score_history,
    connection states and a scoring_runs record."""
    clock = _time.perf_counter()
    as_of = as_utc(as_of) or utcnow()
    day = as_of.date()
    started = utcnow()
    report = ScoringReport(as_of=as_of, full=full)
    partial = account_ids is not None
    with engine.begin() as conn:
        a = Account.__table__
        watermark = conn.execute(select(func.max(a.c.data_changed_at))).scalar_one()
        watermark = as_utc(watermark) or datetime.min.replace(tzinfo=UTC)
        if partial:
            targets: list[str] | None = sorted(set(account_ids or ()))
        elif full:
            targets = None
        else:
            targets = _stale_accounts(conn, config, day)
            total = conn.execute(select(func.count()).select_from(a)).scalar_one()
            if len(targets) >= total:
                targets = None
        facts = (
            load_facts_conn(conn, config, as_of=day, account_ids=targets)
            if targets is None or targets
            else {}
        )
        scores = {aid: score(f, config.scoring) for aid, f in facts.items()}
        report.scores = scores
        report.rescored = sorted(scores)
        _write(conn, config, report, facts, scores, as_of=as_of, scored_at=started)
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
    report.full = not partial and targets is None
    report.seconds = _time.perf_counter() - clock
    return report


def _write(
    conn: Any,
    config: Config,
    report: ScoringReport,
    facts: dict[str, AccountFacts],
    scores: dict[str, Score],
    *,
    as_of: datetime,
    scored_at: datetime,
) -> None:
    s = AccountScore.__table__
    a = Account.__table__
    # Everyone's stored component scores, for percentiles and change detection.
    stored: dict[str, tuple[Any, ...]] = {}
    for aid, components, percentiles, fingerprint, segment, value in conn.execute(
        select(
            s.c.account_id,
            s.c.components,
            s.c.percentiles,
            s.c.inputs_hash,
            a.c.segment,
            s.c.score,
        ).select_from(s.join(a, a.c.account_id == s.c.account_id))
    ):
        stored[aid] = (segment, components, percentiles, fingerprint, value)
    report.accounts = len(set(stored) | set(scores))
    percentiles = _percentiles(config, stored, scores)

    new_rows, changed_rows, same_ids, history = [], [], [], []
    for aid, sc in scores.items():
        fp = sc.fingerprint()
        row = {
            "account_id": aid,
            "as_of": as_of,
            "scored_at": scored_at,
            "score": sc.score,
            "band": sc.band,
            "stage": sc.stage,
            "components": sc.components,
            "reason": sc.reason,
            "active_integrations": sc.active_integrations,
            "percentiles": percentiles.get(aid),
            "config_version": config.version,
            "inputs_hash": fp,
            "details": sc.details,
        }
        old = stored.get(aid)
        if old is None:
            new_rows.append({**row, "segments": []})
            report.created.append(aid)
        elif old[3] != fp:
            changed_rows.append(row)
        else:
            same_ids.append(aid)
            continue
        report.changed.append(aid)
        history.append(
            {
                "account_id": aid,
                "as_of": as_of,
                "scored_at": scored_at,
                "score": sc.score,
                "band": sc.band,
                "stage": sc.stage,
                "components": {n: c["score"] for n, c in sc.components.items()},
                "segments": None,
                "config_version": config.version,
            }
        )
    report.changed.sort()
    if new_rows:
        conn.execute(s.insert(), new_rows)
    if changed_rows:
        cols = [k for k in changed_rows[0] if k != "account_id"]
        conn.execute(
            s.update()
            .where(s.c.account_id == bindparam("b_account_id"))
            .values({k: bindparam(f"b_{k}") for k in cols}),
            [{f"b_{k}": v for k, v in r.items()} for r in changed_rows],
        )
    for part in chunked(sorted(same_ids), _CHUNK):
        conn.execute(
            s.update()
            .where(s.c.account_id.in_(part))
            .values(as_of=as_of, scored_at=scored_at, config_version=config.version)
        )
    # Percentiles move for accounts that were not rescored too: write where they changed.
    moved = [
        {"b_account_id": aid, "b_percentiles": pct}
        for aid, pct in percentiles.items()
        if aid not in scores and aid in stored and stored[aid][2] != pct
    ]
    same_pct = [
        {"b_account_id": aid, "b_percentiles": percentiles[aid]}
        for aid in same_ids
        if stored[aid][2] != percentiles.get(aid)
    ]
    if moved or same_pct:
        conn.execute(
            s.update()
            .where(s.c.account_id == bindparam("b_account_id"))
            .values(percentiles=bindparam("b_percentiles")),
            moved + same_pct,
        )
    report.percentiles_updated = len(moved) + len(same_pct)
    if history:
        conn.execute(ScoreHistory.__table__.insert(), history)
    _write_states(conn, facts, as_of)


def _write_states(conn: Any, facts: dict[str, AccountFacts], as_of: datetime) -> None:
    c = Connection.__table__
    changes = [
        {"b_id": f.connection_id, "b_state": f.state}
        for account in facts.values()
        for f in account.connections
        if f.stored_state != f.state
    ]
    if changes:
        conn.execute(
            c.update()
            .where(c.c.connection_id == bindparam("b_id"))
            .values(state=bindparam("b_state"), state_as_of=as_of),
            changes,
        )


def _percentiles(
    config: Config,
    stored: dict[str, tuple[Any, ...]],
    scores: dict[str, Score],
) -> dict[str, dict[str, Any]]:
    """Each account's percentile rank within its segment, per component and overall:
    the share of peers scoring lower plus half of those scoring the same, 0-100."""
    default = config.scoring.default_segment
    segments = set(config.scoring.activation)
    by_segment: dict[str, list[tuple[str, list[int]]]] = defaultdict(list)
    for aid, (segment, components, _pct, _fp, value) in stored.items():
        if aid in scores or not components:
            continue
        seg = segment if segment in segments else default
        values = [int(components.get(n, {}).get("score", 0)) for n in COMPONENTS]
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
            pct = {key: int(tables[k][matrix[i, k]]) for k, key in enumerate(PERCENTILE_KEYS)}
            pct["segment"] = seg
            pct["peers"] = n
            out[aid] = pct
    return out
