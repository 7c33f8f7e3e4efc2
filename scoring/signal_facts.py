"""The facts the signal rules read, per account and per connection, as of a moment.

Aggregation runs as SQLAlchemy Core over ``daily_usage``, ``connections`` and
``accounts`` (the same statements on SQLite and PostgreSQL); everything after the
queries is plain Python over small rows. Usage windows are whole UTC days: a window
of N days "as of" a moment is the N days ending with that moment's day (today
included) for counts and ratios, and the N whole days before it for daily averages.

Connection lifecycle facts are the latest ones ingest saw; when a fact lies after
``as_of`` (a backdated run) it is treated as not yet having happened.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection as DbConnection

from integration_signals.settings import ACTIVE_WINDOW_DAYS, Config
from store.models import Account, AccountScore, Connection, DailyUsage, Integration
from store.sql import as_utc, chunked

_CHUNK = 500


@dataclass(frozen=True)
class ConnectionFacts:
    """One connection as of the evaluation moment."""

    connection_id: str
    account_id: str
    integration: str
    integration_name: str
    active_window_days: int
    activated_at: datetime | None  # first successful sync, if by as_of
    uninstalled: bool
    active: bool  # last successful sync inside the integration's active window
    successes_window: int  # in the health window (today included)
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
    conn: DbConnection,
    config: Config,
    *,
    as_of: datetime,
    account_ids: Iterable[str] | None = None,
) -> list[AccountFacts]:
    """Facts for the given accounts (every account when None), as of ``as_of``."""
    sc = config.signals
    a = Account.__table__
    s = AccountScore.__table__
    ids = None if account_ids is None else sorted(set(account_ids))
    account_rows: list[Any] = []
    base = select(
        a.c.account_id,
        a.c.name,
        a.c.csm,
        a.c.owner,
        a.c.created_at,
        a.c.api_limit_daily,
        s.c.band,
        s.c.stage,
    ).select_from(a.outerjoin(s, s.c.account_id == a.c.account_id))
    if ids is None:
        account_rows = list(conn.execute(base.order_by(a.c.account_id)))
    else:
        for part in chunked(ids, _CHUNK):
            account_rows.extend(conn.execute(base.where(a.c.account_id.in_(part))))
        account_rows.sort(key=lambda r: r.account_id)
    if not account_rows:
        return []

    catalog = {
        r.key: (r.name, ACTIVE_WINDOW_DAYS.get(r.rhythm, 7))
        for r in conn.execute(select(Integration.__table__))
    }
    connections = _connections(conn, ids, as_of=as_of, config=config, catalog=catalog)
    api = _api_trends(conn, ids, as_of=as_of, config=config)

    by_account: dict[str, list[ConnectionFacts]] = defaultdict(list)
    for cf in connections:
        by_account[cf.account_id].append(cf)

    min_active = sc.integration_activated.min_active
    facts = []
    for row in account_rows:
        conns = tuple(by_account.get(row.account_id, ()))
        created_at = as_utc(row.created_at)
        tenure = (as_of - created_at).days if created_at is not None else None
        first_by_integration: dict[str, datetime] = {}
        for cf in conns:
            if cf.active and cf.activated_at is not None:
                prev = first_by_integration.get(cf.integration)
                if prev is None or cf.activated_at < prev:
                    first_by_integration[cf.integration] = cf.activated_at
        ordered = sorted(first_by_integration.items(), key=lambda kv: (kv[1], kv[0]))
        nth = ordered[min_active - 1] if len(ordered) >= min_active else None
        activations = [cf.activated_at for cf in conns if cf.activated_at is not None]
        limit = row.api_limit_daily
        facts.append(
            AccountFacts(
                account_id=row.account_id,
                as_of=as_of,
                name=row.name,
                csm=row.csm or None,
                owner=row.owner or None,
                created_at=created_at,
                tenure_days=tenure,
                api_limit_daily=limit,
                band=row.band,
                stage=row.stage,
                connections=conns,
                active_integrations=len(first_by_integration),
                nth_activation_at=nth[1] if nth else None,
                nth_integration=nth[0] if nth else None,
                first_sync_at=min(activations) if activations else None,
                api=api.get(row.account_id) if limit else None,
            )
        )
    return facts


def _where_accounts(column: Any, ids: list[str] | None) -> Iterable[Any]:
    """One filter per chunk of account ids (or a single no-op filter for all)."""
    if ids is None:
        yield None
        return
    for part in chunked(ids, _CHUNK):
        yield column.in_(part)


def _connections(
    conn: DbConnection,
    ids: list[str] | None,
    *,
    as_of: datetime,
    config: Config,
    catalog: dict[str, tuple[str, int]],
) -> list[ConnectionFacts]:
    c = Connection.__table__
    u = DailyUsage.__table__
    today = as_of.date()
    health_first, _ = _day_span(as_of, config.signals.health_degradation.window_days)
    used = (u.c.successes + u.c.failures + u.c.api_calls) > 0
    usage_q = select(
        u.c.connection_id,
        func.sum(case((u.c.day >= health_first, u.c.successes), else_=0)).label("succ"),
        func.sum(case((u.c.day >= health_first, u.c.failures), else_=0)).label("fail"),
        func.max(case((u.c.successes > 0, u.c.day))).label("last_success_day"),
        func.max(case((used, u.c.day))).label("last_usage_day"),
    ).group_by(u.c.connection_id)
    conn_q = select(
        c.c.connection_id,
        c.c.account_id,
        c.c.integration,
        c.c.activated_at,
        c.c.last_installed_at,
        c.c.uninstalled_at,
        c.c.auth_expired_at,
        c.c.auth_restored_at,
    )
    usage: dict[str, Any] = {}
    rows: list[Any] = []
    for where in _where_accounts(u.c.account_id, ids):
        q = usage_q.where(u.c.day <= today)
        if where is not None:
            q = q.where(where)
        usage.update({r.connection_id: r for r in conn.execute(q)})
    for where in _where_accounts(c.c.account_id, ids):
        q = conn_q if where is None else conn_q.where(where)
        rows.extend(conn.execute(q))

    out = []
    for r in rows:
        name, window = catalog.get(r.integration, (r.integration, 7))
        us = usage.get(r.connection_id)
        activated = as_utc(r.activated_at)
        if activated is not None and activated > as_of:
            activated = None
        uninstalled_at = as_utc(r.uninstalled_at)
        reinstalled_at = as_utc(r.last_installed_at)
        uninstalled = (
            uninstalled_at is not None
            and uninstalled_at <= as_of
            and (reinstalled_at is None or reinstalled_at <= uninstalled_at)
        )
        last_success_day = _as_date(us.last_success_day) if us else None
        last_usage_day = _as_date(us.last_usage_day) if us else None
        active = (
            not uninstalled
            and last_success_day is not None
            and (today - last_success_day).days < window
        )
        expired = as_utc(r.auth_expired_at)
        restored = as_utc(r.auth_restored_at)
        broken_auth = (
            expired is not None
            and expired <= as_of
            and not uninstalled
            and (restored is None or restored > as_of or restored < expired)
        )
        out.append(
            ConnectionFacts(
                connection_id=r.connection_id,
                account_id=r.account_id,
                integration=r.integration,
                integration_name=name,
                active_window_days=window,
                activated_at=activated,
                uninstalled=uninstalled,
                active=active,
                successes_window=int(us.succ or 0) if us else 0,
                failures_window=int(us.fail or 0) if us else 0,
                last_success_day=last_success_day,
                last_usage_day=last_usage_day,
                idle_days=(today - last_usage_day).days if last_usage_day else None,
                auth_expired_at=expired if broken_auth else None,
            )
        )
    return out


def _api_trends(
    conn: DbConnection, ids: list[str] | None, *, as_of: datetime, config: Config
) -> dict[str, ApiTrend]:
    """Per account: daily API calls over the whole days before as_of's day."""
    rule = config.signals.api_limit_proximity
    u = DailyUsage.__table__
    a = Account.__table__
    today = as_of.date()
    span = max(rule.trend_days, rule.average_days)
    first = today - timedelta(days=span)
    q = (
        select(u.c.account_id, u.c.day, func.sum(u.c.api_calls).label("calls"))
        .where(and_(u.c.day >= first, u.c.day < today))
        .where(u.c.account_id.in_(select(a.c.account_id).where(a.c.api_limit_daily > 0)))
        .group_by(u.c.account_id, u.c.day)
    )
    series: dict[str, list[int]] = {}
    for where in _where_accounts(u.c.account_id, ids):
        for r in conn.execute(q if where is None else q.where(where)):
            days = series.setdefault(r.account_id, [0] * span)
            days[(_as_date(r.day) - first).days] += int(r.calls or 0)
    limits = {}
    for where in _where_accounts(a.c.account_id, ids):
        lq = select(a.c.account_id, a.c.api_limit_daily).where(a.c.api_limit_daily > 0)
        limits.update(dict(conn.execute(lq if where is None else lq.where(where)).all()))
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
