"""The facts the signal rules read, per account and per connection, as of a moment.

Connection facts are scoring's (``scoring.facts``: states, 7-day sync sums, lifecycle
replayed to the as-of day), so a signal and the score agree on what is active. This
module adds what only the rules need, as SQLAlchemy Core over ``daily_usage`` and
``accounts`` (the same statements on SQLite and PostgreSQL): the last day with any
usage per connection, and per account the daily API calls over the trend window
(whole UTC days before the as-of day) with their least-squares projection.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.engine import Connection as DbConnection

from integration_signals.config import Config
from integration_signals.scoring.facts import load_facts
from integration_signals.store.models import AccountScore, DailyUsage
from integration_signals.store.sql import chunked

_CHUNK = 500


@dataclass(slots=True)
class ConnectionFacts:
    """One connection as of the evaluation moment."""

    connection_id: str
    account_id: str
    integration: str
    integration_name: str
    active_window_days: int
    activated_at: datetime | None  # first successful sync, if by as_of
    uninstalled: bool
    active: bool  # scoring's state: active (a good sync inside the active window)
    state: str  # active | broken | idle | uninstalled | installed (scoring's)
    successes_window: int  # the last 7 days, today included
    failures_window: int
    last_success_day: date | None
    last_usage_day: date | None  # last day with a sync attempt or API calls
    idle_days: int | None  # whole days since last_usage_day
    auth_expired_at: datetime | None  # set while credentials are broken

    @property
    def attempts_window(self) -> int:
        return self.successes_window + self.failures_window

    @property
    def success_rate_window(self) -> float | None:
        attempts = self.attempts_window
        return self.successes_window / attempts if attempts else None


@dataclass(frozen=True)
class ApiTrend:
    """Daily API calls of an account: recent average, fitted trend, projected limit day."""

    average: float  # mean daily calls over the average window
    daily: tuple[int, ...]  # the trend window, oldest first, ending yesterday
    slope: float  # calls per day per day (least squares)
    projected_limit_day: date | None  # first day the fitted line reaches the limit


@dataclass(frozen=True)
class AccountFacts:
    """One account as of the evaluation moment, with its connections."""

    account_id: str
    as_of: datetime
    name: str | None
    csm: str | None
    owner: str | None
    created_at: datetime | None
    tenure_days: int | None  # whole days since created_at
    api_limit_daily: int | None
    band: str | None  # from account_scores, when scored
    stage: str | None
    connections: tuple[ConnectionFacts, ...] = ()
    active_integrations: int = 0
    # When the account reached its min_active-th active integration (first activation
    # of each currently active integration, in order) and which integration that was.
    nth_activation_at: datetime | None = None
    nth_integration: str | None = None
    first_sync_at: datetime | None = None
    api: ApiTrend | None = None


def _day_span(as_of: datetime, days: int) -> tuple[date, date]:
    """The ``days`` UTC days ending with as_of's day."""
    last = as_of.date()
    return last - timedelta(days=days - 1), last


def least_squares(values: Sequence[float]) -> tuple[float, float]:
    """Intercept and slope of the least-squares line through (i, values[i])."""
    n = len(values)
    if n < 2:
        return (float(values[0]) if values else 0.0), 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    sxx = sum((i - mean_x) ** 2 for i in range(n))
    sxy = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    slope = sxy / sxx
    return mean_y - slope * mean_x, slope


def project_limit_day(
    daily: Sequence[int], first_day: date, limit: float, *, today: date, horizon_days: int
) -> date | None:
    """The first day on which the least-squares line through ``daily`` (day 0 =
    ``first_day``) reaches ``limit``; ``today`` when it already has; None when the trend
    is flat or falling, or the day lies beyond ``horizon_days``."""
    if not daily:
        return None
    intercept, slope = least_squares(daily)
    today_x = (today - first_day).days
    if intercept + slope * today_x >= limit:
        return today
    if slope <= 0:
        return None
    x = math.ceil((limit - intercept) / slope - 1e-9)
    if x - today_x > horizon_days:
        return None
    return max(today, first_day + timedelta(days=x))


def collect_facts(
    engine: Engine,
    config: Config,
    *,
    as_of: datetime,
    account_ids: Iterable[str] | None = None,
    scored: Mapping[str, Any] | None = None,
) -> list[AccountFacts]:
    """Facts for the given accounts (every account when None), as of ``as_of``. Reads
    only; scoring's rollup passes run on two connections when every account is asked.
    ``scored``: scoring's facts for the same accounts and day, when the caller has them."""
    ids = None if account_ids is None else sorted(set(account_ids))
    if scored is None:
        scored = load_facts(engine, config, as_of=as_of.date(), account_ids=ids)
    with engine.connect() as conn:
        ratings = stored_ratings(conn, None if ids is None else list(scored))
        return facts_from_scored(conn, config, scored, as_of=as_of, ratings=ratings)


def stored_ratings(conn: DbConnection, ids: list[str] | None) -> dict[str, tuple[Any, Any]]:
    """(band, stage) of every scored account, or of ``ids``, from account_scores."""
    s = AccountScore.__table__
    q = select(s.c.account_id, s.c.band, s.c.stage)
    if ids is None:
        return {r[0]: (r[1], r[2]) for r in conn.execute(q)}
    out: dict[str, tuple[Any, Any]] = {}
    for part in chunked(ids, _CHUNK):
        out.update((r[0], (r[1], r[2])) for r in conn.execute(q.where(s.c.account_id.in_(part))))
    return out


def facts_from_scored(
    conn: DbConnection,
    config: Config,
    scored: Mapping[str, Any],
    *,
    as_of: datetime,
    ratings: Mapping[str, tuple[Any, Any]],
) -> list[AccountFacts]:
    """The rules' facts of the accounts in ``scored`` (scoring's facts as of as_of's
    day: the account row, states, window sums, lifecycle) plus ``ratings``, each
    account's (band, stage) when scored. Reads only what scoring's facts do not hold:
    the last usage day of connections that may be abandoned and the daily API calls
    of accounts at their limit."""
    sc = config.signals
    if not scored:
        return []
    ordered = sorted(scored)
    by_account = _connections(conn, scored, as_of=as_of, config=config)
    # The whole days averaged lie inside scoring's 30-day window: an account whose
    # 30-day total spread over the average window stays below the threshold cannot
    # reach it, so only the others need their daily series.
    rule = sc.api_limit_proximity
    gate = rule.average_days <= 29  # the days averaged, D-n..D-1, lie inside D-29..D
    limits = {}
    for aid in ordered:
        acct = scored[aid]
        limit = acct.api_limit_daily
        if not limit:
            continue
        api_30 = sum(c.api_calls_30 for c in acct.connections)
        if not gate or api_30 / rule.average_days >= rule.threshold * limit:
            limits[aid] = limit
    api = _api_trends(conn, by_account, limits, as_of=as_of, config=config)

    min_active = sc.integration_activated.min_active
    facts = []
    for aid in ordered:
        acct = scored[aid]
        conns = by_account.get(aid, ())
        created_at = acct.created_at
        tenure = (as_of - created_at).days if created_at is not None else None
        first_by_integration: dict[str, datetime] = {}
        first_sync = None
        for cf in conns:
            at = cf.activated_at
            if at is None:
                continue
            if first_sync is None or at < first_sync:
                first_sync = at
            if cf.active:
                prev = first_by_integration.get(cf.integration)
                if prev is None or at < prev:
                    first_by_integration[cf.integration] = at
        nth = None
        if len(first_by_integration) >= min_active:
            ordered_active = sorted(first_by_integration.items(), key=lambda kv: (kv[1], kv[0]))
            nth = ordered_active[min_active - 1]
        limit = acct.api_limit_daily
        band, stage = ratings.get(aid, (None, None))
        facts.append(
            AccountFacts(
                account_id=aid,
                as_of=as_of,
                name=acct.name,
                csm=acct.csm or None,
                owner=acct.owner or None,
                created_at=created_at,
                tenure_days=tenure,
                api_limit_daily=limit,
                band=band,
                stage=stage,
                connections=conns,
                active_integrations=len(first_by_integration),
                nth_activation_at=nth[1] if nth else None,
                nth_integration=nth[0] if nth else None,
                first_sync_at=first_sync,
                api=api.get(aid) if limit else None,
            )
        )
    return facts


def _connections(
    conn: DbConnection,
    scored: Mapping[str, Any],
    *,
    as_of: datetime,
    config: Config,
) -> dict[str, tuple[ConnectionFacts, ...]]:
    """Each account's connections as the rules see them: scoring's connection facts as
    of as_of's day (states, 7-day sums, lifecycle replayed to that day), plus the last
    day with any usage, which the rules add."""
    today = as_of.date()
    # A day with a sync attempt is a day with usage; only a connection whose last
    # attempt is at least idle_days old can be abandoned, and only for those does a
    # later day with API calls alone matter: ask the rollups about them alone.
    idle_floor = config.signals.abandonment.idle_days
    candidates: list[str] = []
    for a in scored.values():
        for c in a.connections:
            if c.activated_at is None or c.state == "uninstalled":
                continue
            lsd, lfd = c.last_success_day, c.last_failure_day
            last = lfd if lsd is None else lsd if lfd is None or lsd >= lfd else lfd
            if last is None or (today - last).days >= idle_floor:
                candidates.append(c.connection_id)
    last_usage: dict[str, date | None] = {}
    u = DailyUsage.__table__
    used = (u.c.successes + u.c.failures + u.c.api_calls) > 0
    usage_q = (
        select(u.c.connection_id, func.max(u.c.day).label("last_usage_day"))
        .where(u.c.day <= today, used)
        .group_by(u.c.connection_id)
    )
    for part in chunked(candidates, _CHUNK):
        for r in conn.execute(usage_q.where(u.c.connection_id.in_(part))):
            last_usage[r[0]] = _as_date(r[1])
    asked = set(candidates)

    out: dict[str, tuple[ConnectionFacts, ...]] = {}
    for aid, a in scored.items():
        conns = []
        for c in a.connections:
            cid = c.connection_id
            lsd, lfd = c.last_success_day, c.last_failure_day
            last_used = lfd if lsd is None else lsd if lfd is None or lsd >= lfd else lfd
            if cid in asked:
                last_used = last_usage.get(cid, last_used)
            state = c.state
            uninstalled = state == "uninstalled"
            expired = c.auth_expired_at
            if expired is not None:
                restored = c.auth_restored_at
                if uninstalled or (restored is not None and restored >= expired):
                    expired = None
            info = c.integration
            conns.append(
                ConnectionFacts(
                    cid,
                    c.account_id,
                    info.key,
                    info.name,
                    info.window_days,
                    c.activated_at,
                    uninstalled,
                    state == "active",
                    state,
                    c.successes_7,
                    c.failures_7,
                    lsd,
                    last_used,
                    (today - last_used).days if last_used else None,
                    expired,
                )
            )
        out[aid] = tuple(conns)
    return out


def _api_trends(
    conn: DbConnection,
    by_account: Mapping[str, Sequence[ConnectionFacts]],
    limits: dict[str, int],
    *,
    as_of: datetime,
    config: Config,
) -> dict[str, ApiTrend]:
    """Per account of ``limits`` whose average reaches the threshold: daily API calls
    over the whole days before as_of's day, their average and least-squares
    projection. The average (a short window) is summed first; the daily series only
    for the accounts it puts at their limit (the only ones the rule reads it for)."""
    rule = config.signals.api_limit_proximity
    if not limits:
        return {}
    u = DailyUsage.__table__
    today = as_of.date()

    def ids(accounts: Iterable[str]) -> list[str]:
        return [c.connection_id for a in accounts for c in by_account.get(a, ())]

    avg_first = today - timedelta(days=rule.average_days)
    totals: dict[str, int] = defaultdict(int)
    q_avg = (
        select(u.c.account_id, func.sum(u.c.api_calls))
        .where(u.c.day >= avg_first, u.c.day < today)
        .group_by(u.c.account_id)
    )
    for part in chunked(ids(limits), _CHUNK):
        for account_id, calls in conn.execute(q_avg.where(u.c.connection_id.in_(part))):
            totals[account_id] += int(calls or 0)
    near = {
        aid: limit
        for aid, limit in limits.items()
        if totals.get(aid, 0) / rule.average_days >= rule.threshold * limit
    }
    span = max(rule.trend_days, rule.average_days)
    first = today - timedelta(days=span)
    q = (
        select(u.c.account_id, u.c.day, func.sum(u.c.api_calls).label("calls"))
        .where(and_(u.c.day >= first, u.c.day < today, u.c.api_calls > 0))
        .group_by(u.c.account_id, u.c.day)
    )
    series: dict[str, list[int]] = {}
    for part in chunked(ids(near), _CHUNK):
        for r in conn.execute(q.where(u.c.connection_id.in_(part))):
            day = _as_date(r.day)
            if r.account_id not in near or day is None:
                continue
            days = series.setdefault(r.account_id, [0] * span)
            days[(day - first).days] += int(r.calls or 0)
    out = {}
    for account_id, days in series.items():
        average = sum(days[-rule.average_days :]) / rule.average_days
        trend = days[-rule.trend_days :]
        trend_first = today - timedelta(days=len(trend))
        _, slope = least_squares(trend)
        out[account_id] = ApiTrend(
            average=average,
            daily=tuple(trend),
            slope=slope,
            projected_limit_day=project_limit_day(
                trend,
                trend_first,
                float(limits[account_id]),
                today=today,
                horizon_days=rule.horizon_days,
            ),
        )
    return out


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
