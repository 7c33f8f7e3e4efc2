"""What the store knows about each account's connections as of a UTC day.

Time semantics: windows are whole UTC days. A fact "as of D" uses the daily rollups
of days <= D and lifecycle events that occurred before midnight after D, so a score
is a pure function of the data and the as-of *date*. ``connections`` holds all-time
lifecycle facts; when some of them are later than D (a backtest), what was known at
D is derived again from ``daily_usage`` and ``events`` — no later data leaks in.

The heavy part is one SQL pass over ``daily_usage`` grouped by connection over the
last 60 days (SQLAlchemy Core, the same on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, select
from sqlalchemy.engine import Connection as DBConnection

from integration_signals.settings import ACTIVE_WINDOW_DAYS, Config
from store.models import Account, Connection, DailyUsage, Event, Integration
from store.sql import as_utc, chunked

WINDOW_DAYS = 60  # the rollup days one scoring pass reads: two 30-day months
_CHUNK = 500

LIFECYCLE_TYPES = (
    "integration.setup_started",
    "integration.installed",
    "integration.configured",
    "integration.uninstalled",
    "auth.expired",
    "auth.restored",
)


def cutoff_of(as_of: date) -> datetime:
    """The first moment not included in the as-of day D: midnight after D, UTC."""
    return datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class IntegrationInfo:
    key: str
    name: str
    category: str
    rhythm: str
    window_days: int


@dataclass(slots=True)
class ConnectionFacts:
    """One connection as of day D: lifecycle known at D and usage sums over windows
    ending on D (7 days: D-6..D; 30 days: D-29..D; previous 30: D-59..D-30)."""

    connection_id: str
    account_id: str
    integration: IntegrationInfo
    installed_at: datetime | None = None
    last_installed_at: datetime | None = None
    setup_started_at: datetime | None = None
    activated_at: datetime | None = None
    uninstalled_at: datetime | None = None
    auth_expired_at: datetime | None = None
    auth_restored_at: datetime | None = None
    last_success_at: datetime | None = None
    config: dict[str, Any] = field(default_factory=dict)
    successes_7: int = 0
    failures_7: int = 0
    records_7: int = 0
    bytes_7: int = 0
    api_calls_7: int = 0
    successes_30: int = 0
    failures_30: int = 0
    automated_30: int = 0
    manual_30: int = 0
    records_30: int = 0
    api_calls_30: int = 0
    use_days_30: int = 0
    records_prev_30: int = 0
    last_success_day: date | None = None
    last_failure_day: date | None = None
    state: str = "installed"
    stored_state: str | None = None  # what the connections table says (last run's)

    @property
    def name(self) -> str:
        return self.integration.name

    @property
    def activated(self) -> bool:
        return self.activated_at is not None

    @property
    def in_use(self) -> bool:
        """Activated, not uninstalled, and not abandoned (active or broken)."""
        return self.state in ("active", "broken")


@dataclass(slots=True)
class AccountFacts:
    account_id: str
    name: str | None
    segment: str | None
    plan: str | None
    mrr: float | None
    api_limit_daily: int | None
    created_at: datetime | None
    as_of: date
    connections: list[ConnectionFacts] = field(default_factory=list)

    def tenure_start(self) -> date:
        """Start of tenure: the account's created_at, else its first connection fact."""
        if self.created_at is not None:
            return self.created_at.date()
        known = [
            t.date()
            for c in self.connections
            for t in (c.setup_started_at, c.installed_at, c.activated_at)
            if t is not None
        ]
        return min(known) if known else self.as_of


def connection_state(c: ConnectionFacts, as_of: date) -> str:
    """installed (not yet activated) | active | broken | idle | uninstalled.

    Broken = a fixable problem (credentials expired, or the latest attempts inside the
    active window failed: a later day with failures and no success); idle = nothing
    successful inside the window and nothing failing either (abandonment). Never lumped.
    """
    if c.uninstalled_at is not None and (
        c.last_installed_at is None or c.uninstalled_at >= c.last_installed_at
    ):
        return "uninstalled"
    if c.activated_at is None:
        return "installed"
    if c.auth_expired_at is not None and (
        c.auth_restored_at is None or c.auth_restored_at < c.auth_expired_at
    ):
        return "broken"
    window_start = as_of - timedelta(days=c.integration.window_days - 1)
    lfd, lsd = c.last_failure_day, c.last_success_day
    if lfd is not None and lfd >= window_start and (lsd is None or lfd > lsd):
        return "broken"
    if lsd is not None and lsd >= window_start:
        return "active"
    return "idle"


def integration_catalog(conn: DBConnection, config: Config) -> dict[str, IntegrationInfo]:
    """Every integration: config catalog first, auto-added ones from the table."""
    out: dict[str, IntegrationInfo] = {}
    t = Integration.__table__
    for key, name, category, rhythm in conn.execute(
        select(t.c.key, t.c.name, t.c.category, t.c.rhythm)
    ):
        out[key] = IntegrationInfo(key, name, category, rhythm, ACTIVE_WINDOW_DAYS[rhythm])
    for key, d in config.integrations.items():
        out[key] = IntegrationInfo(key, d.name, d.category, d.rhythm, d.active_window_days)
    return out


def _info(catalog: dict[str, IntegrationInfo], key: str) -> IntegrationInfo:
    info = catalog.get(key)
    if info is None:
        info = IntegrationInfo(key, key.replace("_", " ").title(), "other", "daily", 7)
        catalog[key] = info
    return info


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _usage_query(as_of: date, connection_ids: Sequence[str] | None) -> Any:
    d = DailyUsage.__table__
    lo = as_of - timedelta(days=WINDOW_DAYS - 1)
    d30 = as_of - timedelta(days=29)
    d7 = as_of - timedelta(days=6)
    in7 = d.c.day >= d7
    in30 = d.c.day >= d30

    def s(cond: Any, col: Any) -> Any:
        return func.sum(case((cond, col), else_=0))

    stmt = select(
        d.c.connection_id,
        s(in7, d.c.successes),
        s(in7, d.c.failures),
        s(in7, d.c.records),
        s(in7, d.c.bytes),
        s(in7, d.c.api_calls),
        s(in30, d.c.successes),
        s(in30, d.c.failures),
        s(in30, d.c.automated),
        s(in30, d.c.manual),
        s(in30, d.c.records),
        s(in30, d.c.api_calls),
        func.sum(case((and_(in30, d.c.successes > 0), 1), else_=0)),
        s(d.c.day < d30, d.c.records),
        func.max(case((d.c.successes > 0, d.c.day))),
        func.max(case((d.c.failures > 0, d.c.day))),
        func.max(d.c.last_success_at),
    ).where(d.c.day >= lo, d.c.day <= as_of)
    if connection_ids is not None:
        stmt = stmt.where(d.c.connection_id.in_(connection_ids))
    return stmt.group_by(d.c.connection_id)


_CONN_COLS = (
    "connection_id",
    "account_id",
    "integration",
    "installed_at",
    "last_installed_at",
    "setup_started_at",
    "activated_at",
    "uninstalled_at",
    "auth_expired_at",
    "auth_restored_at",
    "last_success_at",
    "config",
    "last_event_at",
    "state",
)


def load_facts(
    engine: Engine,
    config: Config,
    *,
    as_of: date,
    account_ids: Iterable[str] | None = None,
) -> dict[str, AccountFacts]:
    """Facts of every account (or of ``account_ids``) as of day ``as_of``."""
    with engine.connect() as conn:
        return load_facts_conn(conn, config, as_of=as_of, account_ids=account_ids)


def load_facts_conn(
    conn: DBConnection,
    config: Config,
    *,
    as_of: date,
    account_ids: Iterable[str] | None = None,
) -> dict[str, AccountFacts]:
    catalog = integration_catalog(conn, config)
    a = Account.__table__
    c = Connection.__table__
    ids = None if account_ids is None else sorted(set(account_ids))
    acct_cols = (
        a.c.account_id,
        a.c.name,
        a.c.segment,
        a.c.plan,
        a.c.mrr,
        a.c.api_limit_daily,
        a.c.created_at,
    )
    account_rows: list[Any] = []
    conn_rows: list[Any] = []
    conn_cols = [c.c[name] for name in _CONN_COLS]
    if ids is None:
        account_rows = list(conn.execute(select(*acct_cols)))
        conn_rows = list(conn.execute(select(*conn_cols)))
    else:
        for part in chunked(ids, _CHUNK):
            account_rows += conn.execute(select(*acct_cols).where(a.c.account_id.in_(part))).all()
            conn_rows += conn.execute(select(*conn_cols).where(c.c.account_id.in_(part))).all()
    accounts = {
        r[0]: AccountFacts(r[0], r[1], r[2], r[3], r[4], r[5], as_utc(r[6]), as_of)
        for r in account_rows
    }
    cutoff = cutoff_of(as_of)
    by_id: dict[str, ConnectionFacts] = {}
    late: list[str] = []  # connections with events after the as-of day
    for r in conn_rows:
        account = accounts.get(r[1])
        if account is None:
            continue
        times = [as_utc(v) for v in r[3:11]]
        f = ConnectionFacts(r[0], r[1], _info(catalog, r[2]), *times, config=r[11] or {})
        f.stored_state = r[13]
        last_event = as_utc(r[12])
        if last_event is not None and last_event >= cutoff:
            late.append(f.connection_id)
            _forget_after(f, cutoff)
        by_id[f.connection_id] = f
        account.connections.append(f)
    if not by_id:
        return accounts
    targets = None if ids is None else list(by_id)
    seen: set[str] = set()
    for part in [None] if targets is None else list(chunked(targets, _CHUNK)):
        for row in conn.execute(_usage_query(as_of, part)):
            f = by_id.get(row[0])
            if f is None:
                continue
            if late:
                seen.add(f.connection_id)
            (
                f.successes_7,
                f.failures_7,
                f.records_7,
                f.bytes_7,
                f.api_calls_7,
                f.successes_30,
                f.failures_30,
                f.automated_30,
                f.manual_30,
                f.records_30,
                f.api_calls_30,
                f.use_days_30,
                f.records_prev_30,
            ) = (int(v or 0) for v in row[1:14])
            f.last_success_day = _as_date(row[14])
            f.last_failure_day = _as_date(row[15])
            if f.last_success_at is None and row[16] is not None:
                f.last_success_at = as_utc(_as_datetime(row[16]))
    if late:
        seen |= _replay_lifecycle(conn, by_id, late, as_of, cutoff)
        for cid in late:
            f = by_id[cid]
            if cid not in seen and f.installed_at is None and f.setup_started_at is None:
                # Nothing about this connection had happened by the as-of day.
                del by_id[cid]
                accounts[f.account_id].connections.remove(f)
    for f in by_id.values():
        if f.last_success_day is None and f.last_success_at is not None:
            f.last_success_day = f.last_success_at.date()
        f.state = connection_state(f, as_of)
    return accounts


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _forget_after(f: ConnectionFacts, cutoff: datetime) -> None:
    """Drop lifecycle facts that are not known yet at ``cutoff``. First-time facts
    later than the cutoff did not happen yet; latest-time ones are replayed from events."""
    for name in ("installed_at", "setup_started_at", "activated_at"):
        value = getattr(f, name)
        if value is not None and value >= cutoff:
            setattr(f, name, None)
    for name in (
        "last_installed_at",
        "uninstalled_at",
        "auth_expired_at",
        "auth_restored_at",
        "last_success_at",
    ):
        value = getattr(f, name)
        if value is not None and value >= cutoff:
            setattr(f, name, _UNKNOWN)


_UNKNOWN = datetime.max.replace(tzinfo=UTC)  # placeholder until replayed


def _replay_lifecycle(
    conn: DBConnection,
    by_id: dict[str, ConnectionFacts],
    late: list[str],
    as_of: date,
    cutoff: datetime,
) -> set[str]:
    """Rebuild the latest-time facts of connections that have later events, from the
    events before the cutoff and the rollups of days <= as_of; returns the connections
    that had lifecycle events before the cutoff."""
    e = Event.__table__
    d = DailyUsage.__table__
    latest: dict[tuple[str, str], tuple[datetime, Any]] = {}
    for part in chunked(late, _CHUNK):
        rows = conn.execute(
            select(e.c.connection_id, e.c.type, e.c.occurred_at, e.c.properties).where(
                e.c.connection_id.in_(part),
                e.c.type.in_(LIFECYCLE_TYPES),
                e.c.occurred_at < cutoff,
            )
        )
        for cid, etype, at, props in rows:
            at = as_utc(at)
            key = (cid, etype)
            if key not in latest or at >= latest[key][0]:
                latest[key] = (at, props)
        for cid, last_ok in conn.execute(
            select(d.c.connection_id, func.max(d.c.last_success_at))
            .where(d.c.connection_id.in_(part), d.c.day <= as_of, d.c.successes > 0)
            .group_by(d.c.connection_id)
        ):
            f = by_id[cid]
            f.last_success_at = as_utc(_as_datetime(last_ok)) if last_ok is not None else None
    for cid in late:
        f = by_id[cid]

        def at(etype: str, cid: str = cid) -> datetime | None:
            hit = latest.get((cid, etype))
            return hit[0] if hit else None

        f.last_installed_at = at("integration.installed")
        f.uninstalled_at = at("integration.uninstalled")
        f.auth_expired_at = at("auth.expired")
        f.auth_restored_at = at("auth.restored")
        if f.last_success_at is _UNKNOWN:
            f.last_success_at = None
        configured = latest.get((cid, "integration.configured"))
        f.config = (configured[1] or {}) if configured else {}
    return {cid for cid, _etype in latest}
