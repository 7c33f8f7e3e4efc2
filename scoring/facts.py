"""What the store knows about each account's connections as of a UTC day.

Time semantics: windows are whole UTC days. A fact "as of D" uses the daily rollups
of days <= D and lifecycle events that occurred before midnight after D, so a score
is a pure function of the data and the as-of *date*. ``connections`` holds all-time
lifecycle facts; when some of them are later than D (a backtest), what was known at
D is derived again from ``daily_usage`` and ``events`` — no later data leaks in.

The heavy part is three plain-sum SQL passes over ``daily_usage`` grouped by
connection (the last 7 days, the last 30, the 30 before), SQLAlchemy Core that runs
the same on SQLite and PostgreSQL. The latest success and failure come from the
connection facts (or, for a past as-of, from the rollups of days <= D).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, String, and_, func, select, type_coerce
from sqlalchemy.engine import Connection as DBConnection

from integration_signals.config import ACTIVE_WINDOW_DAYS, Config
from integration_signals.store.models import Account, Connection, DailyUsage, Event, Integration
from integration_signals.store.sql import as_utc, chunked

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
    last_failure_at: datetime | None = None
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
    features: int | None = None  # advanced configuration features (computed once)

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
    # Not scored: read in the same pass for the signal rules' task owners.
    csm: str | None = None
    owner: str | None = None

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


# The rollup passes: plain sums over three day ranges, grouped by connection. Each
# range is read through the (connection_id, day) key, so the 7-day pass touches
# 7 rows per connection; no per-row CASE (it costs more than the scan itself).
_PASSES: dict[str, tuple[int, int, tuple[str, ...]]] = {
    # name: (first day back, last day back, summed columns -> ConnectionFacts fields)
    "7d": (6, 0, ("successes_7", "failures_7", "records_7", "bytes_7", "api_calls_7")),
    "30d": (
        29,
        0,
        (
            "successes_30",
            "failures_30",
            "automated_30",
            "manual_30",
            "records_30",
            "api_calls_30",
            "use_days_30",
        ),
    ),
    "prev30": (WINDOW_DAYS - 1, 30, ("records_prev_30",)),
}
_SOURCE = {
    "successes_7": "successes",
    "failures_7": "failures",
    "records_7": "records",
    "bytes_7": "bytes",
    "api_calls_7": "api_calls",
    "successes_30": "successes",
    "failures_30": "failures",
    "automated_30": "automated",
    "manual_30": "manual",
    "records_30": "records",
    "api_calls_30": "api_calls",
    "records_prev_30": "records",
}


def _usage_query(as_of: date, name: str, connection_ids: Sequence[str] | None) -> Any:
    d = DailyUsage.__table__
    first, last, fields = _PASSES[name]
    sums = [
        func.sum(func.sign(d.c.successes)) if f == "use_days_30" else func.sum(d.c[_SOURCE[f]])
        for f in fields
    ]
    stmt = select(d.c.connection_id, *sums).where(
        d.c.day >= as_of - timedelta(days=first), d.c.day <= as_of - timedelta(days=last)
    )
    if connection_ids is not None:
        stmt = stmt.where(d.c.connection_id.in_(connection_ids))
    return stmt.group_by(d.c.connection_id)


# PostgreSQL: the three passes as one scan with FILTERed sums. Its seq scan reads the
# whole table whatever the day range, so one scan instead of three is most of the cost
# at 45M rows (on SQLite each pass is a range read of the covering index: kept apart).
ONE_PASS = "60d"
_ONE_PASS_FIELDS = tuple(f for _first, _last, fields in _PASSES.values() for f in fields)


def _one_pass_query(as_of: date) -> Any:
    d = DailyUsage.__table__
    sums = []
    for first, last, fields in _PASSES.values():
        inside = and_(
            d.c.day >= as_of - timedelta(days=first), d.c.day <= as_of - timedelta(days=last)
        )
        for f in fields:
            value = func.sign(d.c.successes) if f == "use_days_30" else d.c[_SOURCE[f]]
            sums.append(func.sum(value).filter(inside))
    return (
        select(d.c.connection_id, *sums)
        .where(d.c.day >= as_of - timedelta(days=WINDOW_DAYS - 1), d.c.day <= as_of)
        .group_by(d.c.connection_id)
    )


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
    "last_failure_at",
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
    workers: int = 2,
    lifecycle: Any = None,
) -> dict[str, AccountFacts]:
    """Facts of every account (or of ``account_ids``) as of day ``as_of``.

    For all accounts the three rollup passes start first on ``workers`` threads with
    their own connections, while this thread loads accounts and connections: the
    database works in C with the GIL released, so both cores are busy.

    ``lifecycle``: what a replay already knows of the lifecycle events up to ``as_of``
    (``scoring.replay.LifecycleHistory``); late connections are settled from it
    instead of reading their events again."""
    if account_ids is not None or workers <= 1:
        with engine.connect() as conn:
            return load_facts_conn(
                conn, config, as_of=as_of, account_ids=account_ids, lifecycle=lifecycle
            )
    from concurrent.futures import ThreadPoolExecutor

    def run(name: str) -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(_usage_query(as_of, name, None)))

    def run_one() -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(_one_pass_query(as_of)))

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        if engine.dialect.name == "postgresql":
            pending = [(ONE_PASS, pool.submit(run_one))]
        else:  # the biggest pass first
            pending = [(name, pool.submit(run, name)) for name in ("30d", "prev30", "7d")]
        with engine.connect() as conn:
            return load_facts_conn(
                conn,
                config,
                as_of=as_of,
                usage=lambda: ((name, future.result()) for name, future in pending),
                lifecycle=lifecycle,
            )
    finally:
        pool.shutdown(wait=True)


def load_facts_conn(
    conn: DBConnection,
    config: Config,
    *,
    as_of: date,
    account_ids: Iterable[str] | None = None,
    usage: Any = None,
    lifecycle: Any = None,
) -> dict[str, AccountFacts]:
    """Facts as of ``as_of`` over one connection, in four steps: read the account and
    connection rows, build their facts (forgetting what was not known yet at the
    as-of day), add the rollup sums, then settle late connections and derive states.

    ``usage`` (all accounts only) returns the ``(pass name, rows)`` of rollup passes
    already running elsewhere: ``load_facts`` overlaps them with the first two steps."""
    catalog = integration_catalog(conn, config)
    ids = None if account_ids is None else sorted(set(account_ids))
    account_rows, conn_rows = _read_rows(conn, ids)
    accounts = {
        r[0]: AccountFacts(
            r[0], r[1], r[2], r[3], r[4], r[5], _dt(r[6]), as_of, [], r[7] or None, r[8] or None
        )
        for r in account_rows
    }
    cutoff = cutoff_of(as_of)
    by_id, late = _connection_facts(conn_rows, accounts, catalog, cutoff)
    if not by_id:
        return accounts
    targets = None if ids is None else list(by_id)
    batches = (
        usage() if targets is None and usage is not None else _usage_passes(conn, as_of, targets)
    )
    seen = _add_usage(by_id, batches, track=bool(late))
    if late:
        _settle_late(conn, accounts, by_id, late, seen, as_of, cutoff, lifecycle)
    _derive_states(by_id.values(), as_of)
    return accounts


def _read_rows(conn: DBConnection, ids: list[str] | None) -> tuple[list[Any], list[Any]]:
    """The account rows and connection rows of every account (``ids`` None) or of
    ``ids``, read in chunks that keep each ``IN`` list short."""
    a = Account.__table__
    c = Connection.__table__
    acct_cols = (
        a.c.account_id,
        a.c.name,
        a.c.segment,
        a.c.plan,
        a.c.mrr,
        a.c.api_limit_daily,
        type_coerce(a.c.created_at, String),
        a.c.csm,
        a.c.owner,
    )
    # Raw text for timestamps and JSON, parsed below: several times faster than the
    # column types' result processing over 50,000 rows.
    conn_cols = [
        type_coerce(c.c[name], String) if name.endswith("_at") or name == "config" else c.c[name]
        for name in _CONN_COLS
    ]
    if ids is None:
        return list(conn.execute(select(*acct_cols))), list(conn.execute(select(*conn_cols)))
    account_rows: list[Any] = []
    conn_rows: list[Any] = []
    for part in chunked(ids, _CHUNK):
        account_rows += conn.execute(select(*acct_cols).where(a.c.account_id.in_(part))).all()
        conn_rows += conn.execute(select(*conn_cols).where(c.c.account_id.in_(part))).all()
    return account_rows, conn_rows


def _connection_facts(
    conn_rows: Iterable[Any],
    accounts: dict[str, AccountFacts],
    catalog: dict[str, IntegrationInfo],
    cutoff: datetime,
) -> tuple[dict[str, ConnectionFacts], list[str]]:
    """Each connection row of a loaded account as facts, appended to its account, by
    connection id; and the ids of "late" connections, with events at or after
    ``cutoff``, whose facts not known yet at the cutoff are forgotten (and replayed)."""
    by_id: dict[str, ConnectionFacts] = {}
    late: list[str] = []
    for r in conn_rows:
        account = accounts.get(r[1])
        if account is None:
            continue
        times = [_dt(v) for v in r[3:12]]
        cfg = r[12]
        if cfg.__class__ is str:
            cfg = orjson.loads(cfg)
        f = ConnectionFacts(r[0], r[1], _info(catalog, r[2]), *times, config=cfg or {})
        f.stored_state = r[14]
        last_event = _dt(r[13])
        if last_event is not None and last_event >= cutoff:
            late.append(f.connection_id)
            _forget_after(f, cutoff)
        by_id[f.connection_id] = f
        account.connections.append(f)
    return by_id, late


def _usage_passes(
    conn: DBConnection, as_of: date, targets: list[str] | None
) -> Iterator[tuple[str, Any]]:
    """Run the rollup passes here, one after another: over every connection
    (``targets`` None) or over ``targets`` in chunks."""
    parts: list[list[str] | None] = [None] if targets is None else list(chunked(targets, _CHUNK))
    for name in _PASSES:
        for part in parts:
            yield name, conn.execute(_usage_query(as_of, name, part))


def _add_usage(
    by_id: dict[str, ConnectionFacts], batches: Iterable[tuple[str, Any]], *, track: bool
) -> set[str]:
    """Set each pass's sums on the facts of its connections. With ``track``, returns
    the connections that had any rollup row (else an empty set)."""
    seen: set[str] = set()
    for name, rows in batches:
        fields = _ONE_PASS_FIELDS if name == ONE_PASS else _PASSES[name][2]
        for row in rows:
            f = by_id.get(row[0])
            if f is None:
                continue
            if track:
                seen.add(f.connection_id)
            for field_name, value in zip(fields, row[1:], strict=True):
                setattr(f, field_name, int(value or 0))
    return seen


def _settle_late(
    conn: DBConnection,
    accounts: dict[str, AccountFacts],
    by_id: dict[str, ConnectionFacts],
    late: list[str],
    seen: set[str],
    as_of: date,
    cutoff: datetime,
    lifecycle: Any = None,
) -> None:
    """Replay the late connections' lifecycle up to the cutoff, and drop those of which
    nothing had happened by the as-of day (no rollup, no event, never set up)."""
    if lifecycle is not None:
        seen |= lifecycle.settle(by_id, late, as_of)
    else:
        seen |= _replay_lifecycle(conn, by_id, late, as_of, cutoff)
    for cid in late:
        f = by_id[cid]
        if cid not in seen and f.installed_at is None and f.setup_started_at is None:
            del by_id[cid]
            accounts[f.account_id].connections.remove(f)


def _derive_states(facts: Iterable[ConnectionFacts], as_of: date) -> None:
    """The latest success and failure days, and the state, of each connection."""
    for f in facts:
        if f.last_success_at is not None:
            f.last_success_day = f.last_success_at.date()
        if f.last_failure_at is not None:
            f.last_failure_day = f.last_failure_at.date()
        f.state = connection_state(f, as_of)


def _dt(value: Any) -> datetime | None:
    """A stored timestamp (SQLite text or a PostgreSQL datetime) as aware UTC, without
    the per-value cost of the column type's result processing."""
    if value is None:
        return None
    if value.__class__ is str:
        if len(value) <= 26:  # SQLite storage format, naive UTC
            return datetime.fromisoformat(value + "+00:00")
        return datetime.fromisoformat(value).astimezone(UTC)
    return as_utc(value)


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
        "last_failure_at",
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
        for column, attr, count in (
            (d.c.last_success_at, "last_success_at", d.c.successes),
            (d.c.last_failure_at, "last_failure_at", d.c.failures),
        ):
            for cid, last in conn.execute(
                select(d.c.connection_id, func.max(column))
                .where(d.c.connection_id.in_(part), d.c.day <= as_of, count > 0)
                .group_by(d.c.connection_id)
            ):
                setattr(by_id[cid], attr, _dt(last))
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
        if f.last_failure_at is _UNKNOWN:
            f.last_failure_at = None
        configured = latest.get((cid, "integration.configured"))
        f.config = (configured[1] or {}) if configured else {}
    return {cid for cid, _etype in latest}
