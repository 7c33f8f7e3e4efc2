"""Signal episodes, playbook tasks and segments, evaluated after each scoring run.

For every account (or the given ones) the rules of ``scoring.rules.RULES`` say which
conditions hold as of ``as_of``. A condition that holds without an open episode fires
one (a ``signals`` row plus its task); an open episode whose condition no longer holds
is resolved. The partial unique index on open episodes (account, kind, subject) makes
the insert idempotent, so repeated or concurrent runs never duplicate a signal or a
task. The account's segments are then derived from its open episodes and its score.

The ``feed_stale`` guard comes first: while no event has been seen for
``signals.feed_stale_hours``, risk rules fire nothing and no episode resolves (absent
data proves nothing), and one alert task says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, and_, func, select, text, update
from sqlalchemy.engine import Connection

from integration_signals.config import Config, SignalsConfig
from integration_signals.scoring import tasks as task_ops
from integration_signals.scoring.rules import FEED_STALE, GLOBAL, KINDS, RULES, Rule, task_title
from integration_signals.scoring.signal_facts import AccountFacts, collect_facts
from integration_signals.store.bulk import COPY_MIN_ROWS, Bulk
from integration_signals.store.feed import last_event_seen
from integration_signals.store.models import AccountScore, Signal, Task, TaskEvent
from integration_signals.store.sql import as_utc, chunked, insert_for

_WHOLE_READ = 5_000  # accounts from which _write_segments reads whole tables
SEGMENT_ORDER = ("expansion-ready", "at-risk", "onboarding")
Key = tuple[str, str, str]  # account_id, kind, subject


@dataclass
class SignalsReport:
    """What one evaluation did."""

    as_of: datetime
    accounts: int = 0  # accounts the evaluation covers (evaluated, or unchanged since)
    evaluated: int = 0  # accounts whose rules were evaluated (read) in this run
    feed_stale: bool = False
    last_event_at: datetime | None = None
    fired: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)
    held_back: int = 0  # risk conditions not fired because the feed is stale
    open_signals: int = 0
    tasks_created: int = 0
    tasks_closed: int = 0
    tasks_reopened: int = 0
    tasks_overdue: int = 0
    segments_changed: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "accounts": self.accounts,
            "evaluated": self.evaluated,
            "feed_stale": self.feed_stale,
            "last_event_at": self.last_event_at,
            "fired": self.fired,
            "resolved": self.resolved,
            "held_back": self.held_back,
            "open_signals": self.open_signals,
            "tasks_created": self.tasks_created,
            "tasks_closed": self.tasks_closed,
            "tasks_reopened": self.tasks_reopened,
            "tasks_overdue": self.tasks_overdue,
            "segments_changed": self.segments_changed,
        }


@dataclass(frozen=True)
class _Holding:
    rule: Rule
    account: AccountFacts | None
    details: dict[str, Any]


def evaluate_signals(
    engine: Engine,
    config: Config,
    *,
    as_of: datetime,
    account_ids: Iterable[str] | None = None,
    scored_facts: Mapping[str, Any] | None = None,
    feed_seen: Callable[[Connection, datetime], datetime | None] | None = None,
) -> SignalsReport:
    """Evaluate every rule for the accounts (all when None) as of ``as_of``; write
    episodes, tasks (with history) and ``account_scores.segments``.

    ``scored_facts``: scoring's facts for exactly those accounts as of the same day
    (``ScoringReport.all_facts`` of a run at the same as_of), to skip reloading them.
    ``feed_seen``: answers ``store.feed.last_event_seen`` (a replay knows it per day
    without scanning the events again)."""
    ids = None if account_ids is None else sorted(set(account_ids))
    # Facts first, outside the writing transaction (which then stays short).
    facts = collect_facts(engine, config, as_of=as_of, account_ids=ids, scored=scored_facts)
    with engine.begin() as conn:
        return apply_rules(conn, config, facts, as_of=as_of, ids=ids, feed_seen=feed_seen)


@dataclass(frozen=True)
class GuardState:
    """What the feed_stale guard sees at one moment: the last event, whether the feed
    is stale, and the id of the open guard episode (None when closed)."""

    last_event_at: datetime | None
    stale: bool
    open_id: int | None


def guard_state(
    conn: Connection,
    cfg: SignalsConfig,
    *,
    as_of: datetime,
    seen: Callable[[Connection, datetime], datetime | None] | None = None,
) -> GuardState:
    last = (seen or last_event_seen)(conn, as_of)
    stale = last is None or as_of - last >= timedelta(hours=cfg.feed_stale_hours)
    s = Signal.__table__
    open_id = conn.execute(
        select(s.c.id).where(
            s.c.account_id == GLOBAL, s.c.kind == FEED_STALE.kind, s.c.status == "open"
        )
    ).scalar_one_or_none()
    return GuardState(last, stale, open_id)


def apply_rules(
    conn: Connection,
    config: Config,
    facts: list[AccountFacts],
    *,
    as_of: datetime,
    ids: list[str] | None,
    feed_seen: Callable[[Connection, datetime], datetime | None] | None = None,
    guard: GuardState | None = None,
) -> SignalsReport:
    """Evaluate the rules over ``facts`` (the accounts ``ids``, every account when
    None) inside the caller's transaction: the guard, episodes fired and resolved,
    their tasks, segments and the task sweep. ``guard``: the guard's state when the
    caller read it already (in the same transaction)."""
    cfg = config.signals
    report = SignalsReport(as_of=as_of)
    report.accounts = report.evaluated = len(facts)
    if guard is None:
        guard = guard_state(conn, cfg, as_of=as_of, seen=feed_seen)
    report.feed_stale = _guard(conn, cfg, guard, as_of=as_of, report=report)
    holding = _conditions(facts, cfg)
    open_now = _open_episodes(conn, ids)
    frozen = report.feed_stale
    firing = []
    for key, h in sorted(holding.items(), key=lambda item: item[0]):
        if key in open_now:
            continue
        if frozen and h.rule.polarity == "risk":
            report.held_back += 1
            continue
        firing.append((key, h))
    _fire(conn, cfg, firing, as_of=as_of, report=report)
    if not frozen:
        gone = {k: sid for k, sid in open_now.items() if k not in holding}
        _resolve(conn, gone, as_of=as_of, report=report)
    _write_segments(conn, cfg, facts, report=report, everyone=ids is None)
    report.tasks_reopened, report.tasks_overdue = task_ops.sweep(conn, now=as_of)
    s = Signal.__table__
    report.open_signals = conn.execute(
        select(func.count()).select_from(s).where(s.c.status == "open")
    ).scalar_one()
    return report


def feed_stale_open(engine: Engine) -> bool:
    """Whether the feed_stale guard is open (syncs hold their CRM writes while it is)."""
    s = Signal.__table__
    with engine.connect() as conn:
        return (
            conn.execute(
                select(s.c.id).where(
                    s.c.account_id == GLOBAL, s.c.kind == FEED_STALE.kind, s.c.status == "open"
                )
            ).first()
            is not None
        )


# ---------------------------------------------------------------- the guard


def _guard(
    conn: Connection,
    cfg: SignalsConfig,
    state: GuardState,
    *,
    as_of: datetime,
    report: SignalsReport,
) -> bool:
    last, stale, open_id = state.last_event_at, state.stale, state.open_id
    report.last_event_at = last
    key: Key = (GLOBAL, FEED_STALE.kind, "")
    if stale and open_id is None:
        details = {
            "last_event_at": last.isoformat() if last else None,
            "hours_without_events": (
                round((as_of - last).total_seconds() / 3600, 1) if last else None
            ),
            "threshold_hours": cfg.feed_stale_hours,
        }
        _fire(conn, cfg, [(key, _Holding(FEED_STALE, None, details))], as_of=as_of, report=report)
    elif not stale and open_id is not None:
        _resolve(conn, {key: open_id}, as_of=as_of, report=report)
    return stale


# ---------------------------------------------------------------- conditions


def _conditions(facts: list[AccountFacts], cfg: SignalsConfig) -> dict[Key, _Holding]:
    """Every (account, kind, subject) whose rule's condition holds, with its details."""
    holding: dict[Key, _Holding] = {}
    for acct in facts:
        for rule in RULES:
            if rule.scope == "account":
                details = rule.condition(acct, cfg)
                if details is not None:
                    holding[(acct.account_id, rule.kind, "")] = _Holding(rule, acct, details)
                continue
            for cf in acct.connections:
                details = rule.condition(acct, cf, cfg)
                if details is not None:
                    details = {"connection_id": cf.connection_id, **details}
                    holding[(acct.account_id, rule.kind, cf.connection_id)] = _Holding(
                        rule, acct, details
                    )
    return holding


def _open_episodes(conn: Connection, ids: list[str] | None) -> dict[Key, int]:
    s = Signal.__table__
    q = select(s.c.id, s.c.account_id, s.c.kind, s.c.subject).where(
        s.c.status == "open", s.c.account_id != GLOBAL
    )
    rows: list[Any] = []
    if ids is None:
        rows = list(conn.execute(q))
    else:
        for part in chunked(ids, 500):
            rows.extend(conn.execute(q.where(s.c.account_id.in_(part))))
    return {(r.account_id, r.kind, r.subject): r.id for r in rows}


# ---------------------------------------------------------------- firing and resolving


def _owner(rule: Rule, acct: AccountFacts | None, cfg: SignalsConfig) -> str | None:
    role = rule.task.owner_role
    person: str | None = None
    if role == "csm" and acct is not None:
        person = acct.csm
    elif role == "owner" and acct is not None:
        person = acct.owner
    elif role == "alert":
        person = cfg.alert_owner or None
    return person or cfg.fallback_owner or None


_EVENT_COLUMNS = ("task_id", "at", "actor", "action", "from_status", "to_status", "note")


def _fire(
    conn: Connection,
    cfg: SignalsConfig,
    firing: list[tuple[Key, _Holding]],
    *,
    as_of: datetime,
    report: SignalsReport,
) -> None:
    """Open the episodes not open already (an open one is left alone, whoever opened
    it), each with its task and the task's first history row; in batches."""
    if not firing:
        return
    s = Signal.__table__
    t = Task.__table__
    by_key = dict(firing)
    stmt = (
        insert_for(conn, s)
        .on_conflict_do_nothing(
            index_elements=["account_id", "kind", "subject"], index_where=text("status = 'open'")
        )
        .returning(s.c.id, s.c.account_id, s.c.kind, s.c.subject)
    )
    opened: list[tuple[int, Key]] = []
    bulk = Bulk(conn)
    many = bulk.pg and len(firing) >= COPY_MIN_ROWS  # COPY, not statements of 500 rows
    if many:
        inserted = bulk.insert_select_returning(
            "signals",
            ("account_id", "kind", "subject", "status", "fired_at", "details"),
            [(*key, "open", bulk.ts(as_of), bulk.json(h.details)) for key, h in firing],
            conflict="(account_id, kind, subject) WHERE status = 'open'",
            returning="id, account_id, kind, subject",
        )
        opened = [(r[0], (r[1], r[2], r[3])) for r in inserted]
    for part in [] if many else chunked(firing, 500):
        rows = [
            {
                "account_id": key[0],
                "kind": key[1],
                "subject": key[2],
                "status": "open",
                "fired_at": as_of,
                "details": holding.details,
            }
            for key, holding in part
        ]
        for r in conn.execute(stmt, rows):
            opened.append((r.id, (r.account_id, r.kind, r.subject)))
    opened.sort()
    task_rows = []
    for signal_id, key in opened:
        holding = by_key[key]
        rule, acct = holding.rule, holding.account
        report.fired.append(
            {"id": signal_id, "account_id": key[0], "kind": key[1], "subject": key[2]}
        )
        account_name = (acct.name or acct.account_id) if acct else "all accounts"
        context = {**holding.details, "account_name": account_name}
        task_rows.append(
            {
                "signal_id": signal_id,
                "account_id": key[0],
                "signal_kind": key[1],
                "title": task_title(rule.kind, holding.details, account_name=account_name),
                "body": rule.task.body(context),
                "owner": _owner(rule, acct, cfg),
                "due_at": rule.task.due(as_of, holding.details, cfg),
                "status": task_ops.OPEN,
                "created_at": as_of,
                "updated_at": as_of,
            }
        )
    if many and task_rows:
        names = tuple(task_rows[0])
        created = bulk.insert_select_returning(
            "tasks",
            names,
            [
                tuple(bulk.ts(v) if isinstance(v, datetime) else v for v in row.values())
                for row in task_rows
            ],
            returning="id, signal_id, signal_kind",
        )
    else:
        created = [
            r
            for part in chunked(task_rows, 500)
            for r in conn.execute(
                t.insert().returning(t.c.id, t.c.signal_id, t.c.signal_kind), list(part)
            )
        ]
    events = [
        (
            task_id,
            as_of,
            task_ops.SYSTEM,
            "create",
            None,
            task_ops.OPEN,
            f"signal {signal_id} {kind} fired",
        )
        for task_id, signal_id, kind in sorted(created)
    ]
    if many:
        bulk.insert_many(
            "task_events",
            _EVENT_COLUMNS,
            [(e[0], bulk.ts(e[1]), *e[2:]) for e in events],
        )
    elif events:
        conn.execute(
            TaskEvent.__table__.insert(),
            [dict(zip(_EVENT_COLUMNS, e, strict=True)) for e in events],
        )
    report.tasks_created += len(events)


def _resolve(
    conn: Connection, episodes: dict[Key, int], *, as_of: datetime, report: SignalsReport
) -> None:
    """Resolve open episodes; close their unclaimed tasks when the rule says so."""
    s = Signal.__table__
    t = Task.__table__
    for (account_id, kind, subject), signal_id in sorted(episodes.items()):
        result = conn.execute(
            update(s)
            .where(and_(s.c.id == signal_id, s.c.status == "open"))
            .values(status="resolved", resolved_at=as_of)
        )
        if result.rowcount != 1:
            continue  # another run resolved it
        report.resolved.append(
            {"id": signal_id, "account_id": account_id, "kind": kind, "subject": subject}
        )
        rule = KINDS.get(kind)
        if rule is not None and not rule.task.close_on_resolve:
            continue
        waiting = conn.execute(
            select(t.c.id, t.c.status).where(
                t.c.signal_id == signal_id, t.c.status.in_((task_ops.OPEN, task_ops.SNOOZED))
            )
        ).all()
        for task_id, status in waiting:
            closed = conn.execute(
                update(t)
                .where(t.c.id == task_id, t.c.status == status)
                .values(status=task_ops.DONE, snoozed_until=None, updated_at=as_of)
            )
            if closed.rowcount == 1:
                report.tasks_closed += 1
                task_ops.record_event(
                    conn,
                    task_id,
                    at=as_of,
                    actor=task_ops.SYSTEM,
                    action="close",
                    from_status=status,
                    to_status=task_ops.DONE,
                    note=f"signal {signal_id} {kind} resolved: the condition cleared",
                )


# ---------------------------------------------------------------- segments


def segments_for(acct: AccountFacts, open_kinds: Iterable[str], cfg: SignalsConfig) -> list[str]:
    """An account's segments from its open episodes and its score (stable order)."""
    found: set[str] = set()
    for kind in open_kinds:
        rule = KINDS.get(kind)
        if rule is not None and rule.segment:
            found.add(rule.segment)
    if acct.band is not None and acct.band in cfg.at_risk_bands:
        found.add("at-risk")
    in_onboarding = acct.stage == "onboarding" or (
        acct.stage is None
        and acct.tenure_days is not None
        and 0 <= acct.tenure_days < cfg.onboarding.period_days
    )
    if in_onboarding:
        found.add("onboarding")
    return [name for name in SEGMENT_ORDER if name in found] + sorted(found - set(SEGMENT_ORDER))


def _write_segments(
    conn: Connection,
    cfg: SignalsConfig,
    facts: list[AccountFacts],
    *,
    report: SignalsReport,
    everyone: bool = False,
) -> None:
    """Store each scored account's segments when they changed (accounts not yet scored
    have no row; scoring creates it with [] and the next evaluation fills it).
    ``everyone``: the facts are every account's (read all rows at once)."""
    s = Signal.__table__
    sc = AccountScore.__table__
    ids = [f.account_id for f in facts]
    kinds: dict[str, set[str]] = {}
    current: dict[str, Any] = {}
    open_q = select(s.c.account_id, s.c.kind).where(s.c.status == "open")
    segments_q = select(sc.c.account_id, sc.c.segments)
    # Many accounts: two plain reads, not hundreds of long IN lists.
    whole = everyone or len(ids) > _WHOLE_READ
    parts: list[list[str] | None] = [None] if whole else list(chunked(ids, 500))
    for part in parts:
        where_open = open_q if part is None else open_q.where(s.c.account_id.in_(part))
        for account_id, kind in conn.execute(where_open):
            kinds.setdefault(account_id, set()).add(kind)
        where_seg = segments_q if part is None else segments_q.where(sc.c.account_id.in_(part))
        current.update(conn.execute(where_seg).all())
    changed = []
    for acct in facts:
        if acct.account_id not in current:
            continue
        wanted = segments_for(acct, kinds.get(acct.account_id, ()), cfg)
        if list(current[acct.account_id] or []) != wanted:
            changed.append((orjson.dumps(wanted).decode(), acct.account_id))
    Bulk(conn).update_many("account_scores", "account_id", ("segments",), changed)
    report.segments_changed += len(changed)


def open_signal_rows(conn: Connection, account_id: str) -> list[dict[str, Any]]:
    """An account's open episodes (for the health card and the bot)."""
    s = Signal.__table__
    rows = conn.execute(
        select(s).where(s.c.account_id == account_id, s.c.status == "open").order_by(s.c.id)
    )
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "subject": r.subject,
            "fired_at": as_utc(r.fired_at),
            "details": r.details,
        }
        for r in rows
    ]
