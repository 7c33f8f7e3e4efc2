"""History replay: rebuild what a live system evaluating at the end of each UTC day of a
range would have written, from the stored events.

Each step scores every account and evaluates the signal rules as of the end of its day
(23:59:59.999999 UTC), with the same functions a live evaluation calls and from one
facts load (scoring's facts are handed to the rules). What only a backdated evaluation
pays for is read once per replay instead of once per day: the connections' lifecycle
events (``LifecycleHistory``, advanced day by day in memory) and the newest event
seen by each day (``FeedHistory``, for the ``feed_stale`` guard).

What "replaces" means. A replay owns everything evaluated from the start of its first
day (S) on: before the first step it rewinds the store to S —
- score history rows, scoring runs, episodes and their tasks (with task history) from
  S on are deleted; the current score rows are dropped and rebuilt by the first step;
- an episode that fired before S and was resolved at or after S straddles the start:
  it is reopened (its resolution is forgotten) and its task gets back the status it had
  before the system closed it; the replay's first step resolves it again if its
  condition had cleared by then, at that step's moment.
Evaluations after the last day are discarded too: the store ends in the state of the
last step, and the next live evaluation continues from there. Replaying the same range
twice gives the same rows (ids and wall-clock ``scored_at`` aside).

Tasks: at the end, a task born in the range whose episode had resolved by the last step
is closed "resolved before it was seen" (status done, closed by ``replay``, one history
row): it is never posted to Slack nor written to a CRM. Tasks of episodes still open
at the end are ordinary open tasks: live work.

Accounts are taken as they are now for the whole range (the store does not keep when an
account row was imported); a person's claim on a task born in the range is lost when
that range is replayed again.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.engine import Connection

from integration_signals.config import Config
from integration_signals.scoring import tasks as task_ops
from integration_signals.scoring.evaluation import SIGNALS_RUN_KEY, evaluate
from integration_signals.scoring.facts import _UNKNOWN, LIFECYCLE_TYPES, _dt, cutoff_of
from integration_signals.store.feed import FEED_KEY, last_event_seen
from integration_signals.store.models import (
    AccountScore,
    DailyUsage,
    Event,
    KeyValue,
    ScoreHistory,
    ScoringRun,
    Signal,
    Task,
    TaskEvent,
)
from integration_signals.store.sql import as_utc, chunked

REPLAY_ACTOR = "replay"
UNSEEN_NOTE = "resolved before it was seen"


def day_end(day: date) -> datetime:
    """The last moment of a UTC day: the clock a replay step evaluates at."""
    return datetime.combine(day, time.max, tzinfo=UTC)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def steps(start: date, end: date, step_days: int = 1) -> Iterator[date]:
    """The days a replay evaluates: ``start``, every ``step_days`` after, and ``end``."""
    day = start
    while day < end:
        yield day
        day += timedelta(days=step_days)
    yield end


@dataclass
class ReplayReport:
    """What one replay did."""

    start: date
    end: date
    days: int = 0
    episodes_opened: int = 0
    episodes_resolved: int = 0
    tasks_live: int = 0
    tasks_closed: int = 0
    rewound: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    seconds_per_day: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.start,
            "to": self.end,
            "days": self.days,
            "episodes": {"opened": self.episodes_opened, "resolved": self.episodes_resolved},
            "tasks": {"live": self.tasks_live, "closed": self.tasks_closed},
            "rewound": self.rewound,
            "seconds": round(self.seconds, 3),
            "seconds_per_day": round(self.seconds_per_day, 4),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


class LifecycleHistory:
    """The connections' lifecycle as known at the end of each replayed day, kept in
    memory: the lifecycle events read once, in time order, and the newest successful
    and failed sync per connection advanced one day of rollups at a time. ``settle``
    answers what ``scoring.facts._replay_lifecycle`` reads from the database."""

    def __init__(self, engine: Engine, *, start: date, end: date) -> None:
        e = Event.__table__
        d = DailyUsage.__table__
        with engine.connect() as conn:
            rows = conn.execute(
                select(e.c.occurred_at, e.c.connection_id, e.c.type, e.c.properties)
                .where(
                    e.c.type.in_(LIFECYCLE_TYPES),
                    e.c.connection_id.is_not(None),
                    e.c.occurred_at < cutoff_of(end),
                )
                .order_by(e.c.occurred_at, e.c.event_id)
            ).all()
            self._events = [(as_utc(r[0]), r[1], r[2], r[3]) for r in rows]
            self._success: dict[str, datetime | None] = {}
            self._failure: dict[str, datetime | None] = {}
            for target, column, count in (
                (self._success, d.c.last_success_at, d.c.successes),
                (self._failure, d.c.last_failure_at, d.c.failures),
            ):
                for cid, last in conn.execute(
                    select(d.c.connection_id, func.max(column))
                    .where(d.c.day < start, count > 0)
                    .group_by(d.c.connection_id)
                ):
                    target[cid] = _dt(last)
        self._engine = engine
        self._next = 0
        self._day = start - timedelta(days=1)
        self._latest: dict[tuple[str, str], tuple[datetime, Any]] = {}
        self._with_events: set[str] = set()

    def advance(self, day: date) -> None:
        """Take in the lifecycle events and rollups up to the end of ``day``."""
        cutoff = cutoff_of(day)
        events = self._events
        while self._next < len(events) and events[self._next][0] < cutoff:
            at, cid, etype, props = events[self._next]
            self._latest[(cid, etype)] = (at, props)
            self._with_events.add(cid)
            self._next += 1
        d = DailyUsage.__table__
        with self._engine.connect() as conn:
            for cid, successes, failures, last_ok, last_bad in conn.execute(
                select(
                    d.c.connection_id,
                    d.c.successes,
                    d.c.failures,
                    d.c.last_success_at,
                    d.c.last_failure_at,
                ).where(d.c.day > self._day, d.c.day <= day)
            ):
                if successes and last_ok is not None:
                    at = _dt(last_ok)
                    old = self._success.get(cid)
                    if old is None or (at is not None and at > old):
                        self._success[cid] = at
                if failures and last_bad is not None:
                    at = _dt(last_bad)
                    old = self._failure.get(cid)
                    if old is None or (at is not None and at > old):
                        self._failure[cid] = at
        self._day = day

    def settle(self, by_id: dict[str, Any], late: list[str], as_of: date) -> set[str]:
        """Set the latest-time lifecycle facts of the late connections as of ``as_of``
        (the day last advanced to); returns those with lifecycle events by then."""
        assert as_of == self._day, "advance the history to the day being scored"
        latest = self._latest
        for cid in late:
            f = by_id[cid]
            if cid in self._success:
                f.last_success_at = self._success[cid]
            elif f.last_success_at is _UNKNOWN:
                f.last_success_at = None
            if cid in self._failure:
                f.last_failure_at = self._failure[cid]
            elif f.last_failure_at is _UNKNOWN:
                f.last_failure_at = None

            def at(etype: str, cid: str = cid) -> datetime | None:
                hit = latest.get((cid, etype))
                return hit[0] if hit else None

            f.last_installed_at = at("integration.installed")
            f.uninstalled_at = at("integration.uninstalled")
            f.auth_expired_at = at("auth.expired")
            f.auth_restored_at = at("auth.restored")
            configured = latest.get((cid, "integration.configured"))
            f.config = (configured[1] or {}) if configured else {}
        return {cid for cid in late if cid in self._with_events}


class FeedHistory:
    """``store.feed.last_event_seen`` for the end of any replayed day, from the newest
    event received and occurred per UTC day, read once (two grouped scans)."""

    def __init__(self, engine: Engine) -> None:
        e = Event.__table__
        self._by_day: dict[date, datetime] = {}
        with engine.connect() as conn:
            for column in (e.c.received_at, e.c.occurred_at):
                for day, newest in conn.execute(
                    select(func.date(column), func.max(column)).group_by(func.date(column))
                ):
                    key = date.fromisoformat(str(day)[:10])
                    at = as_utc(newest)
                    if at is not None and (key not in self._by_day or at > self._by_day[key]):
                        self._by_day[key] = at
            kv = KeyValue.__table__
            self._marker = as_utc(
                conn.execute(
                    select(kv.c.updated_at).where(kv.c.key == FEED_KEY)
                ).scalar_one_or_none()
            )
        self._days = sorted(self._by_day)

    def seen(self, conn: Connection, as_of: datetime) -> datetime | None:
        if self._marker is not None and self._marker <= as_of:
            return last_event_seen(conn, as_of)
        newest = None
        for day in self._days:  # a few hundred days at most
            if day > as_of.date():
                break
            at = self._by_day[day]
            if at <= as_of and (newest is None or at > newest):
                newest = at
        return newest


def rewind(engine: Engine, start: datetime) -> dict[str, int]:
    """Forget what evaluations wrote from ``start`` on (see the module docstring)."""
    s = Signal.__table__
    t = Task.__table__
    e = TaskEvent.__table__
    h = ScoreHistory.__table__
    r = ScoringRun.__table__
    sc = AccountScore.__table__
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        doomed = list(conn.execute(select(s.c.id).where(s.c.fired_at >= start)).scalars())
        task_ids: list[int] = []
        for part in chunked(doomed, 500):
            task_ids += conn.execute(select(t.c.id).where(t.c.signal_id.in_(part))).scalars()
        for part in chunked(task_ids, 500):
            conn.execute(delete(e).where(e.c.task_id.in_(part)))
            conn.execute(delete(t).where(t.c.id.in_(part)))
        counts["episodes_deleted"] = conn.execute(delete(s).where(s.c.fired_at >= start)).rowcount
        counts["tasks_deleted"] = len(task_ids)
        straddling = list(
            conn.execute(
                select(s.c.id).where(s.c.fired_at < start, s.c.resolved_at >= start)
            ).scalars()
        )
        for part in chunked(straddling, 500):
            conn.execute(update(s).where(s.c.id.in_(part)).values(status="open", resolved_at=None))
        counts["episodes_reopened"] = len(straddling)
        counts["tasks_restored"] = _restore_tasks(conn, start)
        counts["history_deleted"] = conn.execute(delete(h).where(h.c.as_of >= start)).rowcount
        conn.execute(delete(r).where(r.c.as_of >= start))
        conn.execute(delete(sc))
        kv = KeyValue.__table__
        conn.execute(delete(kv).where(kv.c.key == SIGNALS_RUN_KEY))
    return counts


def _restore_tasks(conn: Connection, start: datetime) -> int:
    """Undo what the system did to older tasks from ``start`` on: a close on resolve
    gives the task back its status before, an overdue mark is forgotten."""
    t = Task.__table__
    e = TaskEvent.__table__
    rows = conn.execute(
        select(e.c.id, e.c.task_id, e.c.action, e.c.from_status)
        .where(e.c.at >= start, e.c.actor == task_ops.SYSTEM)
        .order_by(e.c.at, e.c.id)
    ).all()
    first_close: dict[int, str | None] = {}
    touched: set[int] = set()
    for _id, task_id, action, from_status in rows:
        touched.add(task_id)
        if action == "close" and task_id not in first_close:
            first_close[task_id] = from_status
    for task_id, status in first_close.items():
        conn.execute(
            update(t)
            .where(t.c.id == task_id, t.c.status == task_ops.DONE)
            .values(status=status or task_ops.OPEN)
        )
    for part in chunked(sorted(touched), 500):
        conn.execute(
            update(t).where(t.c.id.in_(part), t.c.overdue_at >= start).values(overdue_at=None)
        )
    for part in chunked([row[0] for row in rows], 500):
        conn.execute(delete(e).where(e.c.id.in_(part)))
    return len(touched)


def _settle_tasks(engine: Engine, start: datetime, report: ReplayReport) -> None:
    """Close the range's tasks whose episode resolved before the end; count the rest."""
    s = Signal.__table__
    t = Task.__table__
    e = TaskEvent.__table__
    with engine.begin() as conn:
        rows = conn.execute(
            select(t.c.id, s.c.id, s.c.kind, s.c.fired_at, s.c.resolved_at)
            .select_from(t.join(s, s.c.id == t.c.signal_id))
            .where(s.c.fired_at >= start)
            .order_by(t.c.id)
        ).all()
        closed = []
        for task_id, signal_id, kind, fired, resolved in rows:
            if resolved is None:
                report.tasks_live += 1
                continue
            closed.append((task_id, signal_id, kind, as_utc(fired), as_utc(resolved)))
        for part in chunked(closed, 500):
            ids = [c[0] for c in part]
            conn.execute(delete(e).where(e.c.task_id.in_(ids)))
            for task_id, _sid, _kind, _fired, resolved in part:
                conn.execute(
                    update(t)
                    .where(t.c.id == task_id)
                    .values(
                        status=task_ops.DONE,
                        claimed_by=REPLAY_ACTOR,
                        snoozed_until=None,
                        overdue_at=None,
                        updated_at=resolved,
                    )
                )
            conn.execute(
                e.insert(),
                [
                    {
                        "task_id": task_id,
                        "at": resolved,
                        "actor": REPLAY_ACTOR,
                        "action": "close",
                        "from_status": None,
                        "to_status": task_ops.DONE,
                        "note": f"{UNSEEN_NOTE}: signal {sid} {kind} fired"
                        f" {fired.date().isoformat()}, resolved {resolved.date().isoformat()}",
                    }
                    for task_id, sid, kind, fired, resolved in part
                ],
            )
        report.tasks_closed = len(closed)


def replay(
    engine: Engine,
    config: Config,
    *,
    start: date,
    end: date,
    step_days: int = 1,
    progress: Callable[[date], None] | None = None,
    on_day: Callable[[date], None] | None = None,
) -> ReplayReport:
    """Rewind to the start of ``start``, then score and evaluate the signals as of the
    end of each day up to ``end`` (both included), then settle the range's tasks."""
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    if step_days < 1:
        raise ValueError("the step is at least one day")
    clock = _time.perf_counter()
    report = ReplayReport(start=start, end=end)
    since = day_start(start)
    report.rewound = rewind(engine, since)
    report.timings["rewind"] = _time.perf_counter() - clock
    lifecycle = LifecycleHistory(engine, start=start, end=end)
    feed = FeedHistory(engine)
    report.timings["history"] = _time.perf_counter() - clock
    days_clock = _time.perf_counter()
    for day in steps(start, end, step_days):
        as_of = day_end(day)
        lifecycle.advance(day)
        evaluated = evaluate(
            engine, config, as_of=as_of, full=True, lifecycle=lifecycle, feed_seen=feed.seen
        ).signals
        report.days += 1
        report.episodes_opened += len(evaluated.fired)
        report.episodes_resolved += len(evaluated.resolved)
        if on_day is not None:
            on_day(day)
        if progress is not None:
            progress(day)
    days_seconds = _time.perf_counter() - days_clock
    report.timings["days"] = days_seconds
    report.seconds_per_day = days_seconds / max(report.days, 1)
    _settle_tasks(engine, since, report)
    report.seconds = _time.perf_counter() - clock
    report.timings["tasks"] = report.seconds - report.timings["history"] - days_seconds
    return report


def latest_evaluation(engine: Engine) -> datetime | None:
    """The newest moment anything was evaluated at (a scoring run's as-of)."""
    r = ScoringRun.__table__
    with engine.connect() as conn:
        return as_utc(conn.execute(select(func.max(r.c.as_of))).scalar_one())


__all__ = [
    "REPLAY_ACTOR",
    "UNSEEN_NOTE",
    "FeedHistory",
    "LifecycleHistory",
    "ReplayReport",
    "day_end",
    "latest_evaluation",
    "replay",
    "rewind",
    "steps",
    "what_if",
]


def what_if(engine: Engine, config: Config, *, as_of: datetime) -> dict[str, Any]:
    """Scores and open episodes as of a moment before the latest evaluation, written
    nowhere: the read-only answer `signals score --as-of` gives for a past moment (a
    backdated evaluation that wrote would corrupt the state after it; rebuilding the
    past is `signals replay`). Accounts in the shape of ``run.current_scores``."""
    from types import SimpleNamespace

    from integration_signals.scoring.episodes import episodes_as_of
    from integration_signals.scoring.facts import load_facts
    from integration_signals.scoring.score import score
    from integration_signals.scoring.signals import segments_for
    from integration_signals.store.models import Account

    facts = load_facts(engine, config, as_of=as_of.date())
    a = Account.__table__
    with engine.connect() as conn:
        people = {
            r.account_id: r
            for r in conn.execute(select(a.c.account_id, a.c.name, a.c.segment, a.c.csm, a.c.owner))
        }
        episodes = episodes_as_of(conn, as_of)
    kinds: dict[str, list[str]] = {}
    for e in episodes:
        kinds.setdefault(e["account_id"], []).append(e["kind"])
    accounts = []
    for aid in sorted(facts):
        sc = score(facts[aid], config.scoring)
        who = people.get(aid)
        accounts.append(
            {
                "account_id": aid,
                "name": who.name if who else None,
                "segment": who.segment if who else None,
                "csm": who.csm if who else None,
                "owner": who.owner if who else None,
                "score": sc.score,
                "band": sc.band,
                "stage": sc.stage,
                "reason": sc.reason,
                "active_integrations": sc.active_integrations,
                "components": sc.components,
                "segments": segments_for(
                    SimpleNamespace(band=sc.band, stage=sc.stage, tenure_days=None),  # type: ignore[arg-type]
                    kinds.get(aid, ()),
                    config.signals,
                ),
                "percentiles": None,
                "as_of": as_of,
                "scored_at": None,
            }
        )
    return {"accounts": accounts, "episodes": episodes}
