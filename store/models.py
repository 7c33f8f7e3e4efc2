"""Tables. All timestamps are naive UTC; days are UTC calendar days.

Raw events are kept once per ``event_id``; everything scoring reads comes from the
daily rollups and the per-connection lifecycle facts, both maintained incrementally
by ingest in an order-independent way (sums, minimums and maximums).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def _json(**kw: Any) -> Any:
    return Field(default=None, sa_column=Column(JSON, **kw))


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    # An incremental evaluation asks which accounts' age crossed an onboarding threshold.
    __table_args__ = (Index("ix_accounts_created", "created_at"),)

    account_id: str = Field(primary_key=True)
    name: str | None = Field(default=None, index=True)
    domain: str | None = Field(default=None, index=True)
    segment: str | None = None  # smb | mid_market | enterprise
    plan: str | None = None
    mrr: float | None = None
    industry: str | None = None
    employees: int | None = None
    created_at: datetime | None = None
    renewal_date: date | None = None
    api_limit_daily: int | None = None
    csm: str | None = None
    owner: str | None = None
    salesforce_id: str | None = None
    hubspot_id: str | None = None
    renewed: bool | None = None
    churned_at: datetime | None = None
    expansion_mrr: float | None = None
    traits: dict[str, Any] | None = _json()
    # True while the account is known only from events (no account data imported yet).
    is_stub: bool = False
    # Moved forward whenever ingest or import changes something about the account, so
    # incremental scoring knows whom to rescore.
    data_changed_at: datetime | None = Field(default=None, index=True)
    updated_at: datetime | None = None


class Integration(SQLModel, table=True):
    __tablename__ = "integrations"

    key: str = Field(primary_key=True)
    name: str
    category: str = "other"
    rhythm: str = "daily"
    # Seen in events but missing from the catalog: added as other/daily and reported.
    auto_added: bool = False
    first_seen_at: datetime | None = None


class Event(SQLModel, table=True):
    """A raw event, kept once per event_id (the idempotency key)."""

    __tablename__ = "events"
    # Only the key is indexed: every extra index costs ingest a B-tree insert per event.
    __table_args__ = {"sqlite_with_rowid": False}

    event_id: str = Field(primary_key=True)
    type: str
    occurred_at: datetime
    received_at: datetime
    account_id: str
    integration: str | None = None
    connection_id: str | None = None
    records: int | None = Field(default=None, sa_type=BigInteger)
    bytes: int | None = Field(default=None, sa_type=BigInteger)
    api_calls: int | None = Field(default=None, sa_type=BigInteger)
    trigger: str | None = None
    error: str | None = None
    properties: dict[str, Any] | None = _json()
    source: str | None = None


class Connection(SQLModel, table=True):
    """One customer's connection to one integration, with its lifecycle facts.

    The ``*_at`` facts are folded in by ingest with min/max so arrival order does not
    matter. ``state`` is written by scoring as of its ``state_as_of``.
    """

    __tablename__ = "connections"
    __table_args__ = (
        Index("ix_connections_account", "account_id"),
        # Broken connections per account / integration: the portfolio (migration 0003).
        Index("ix_connections_state", "state", "integration", "account_id"),
        # The newest event for the feed_stale guard, at every evaluation (migration 0006).
        Index("ix_connections_last_event", "last_event_at"),
        {"sqlite_with_rowid": False},
    )

    connection_id: str = Field(primary_key=True)
    account_id: str
    integration: str
    setup_started_at: datetime | None = None
    installed_at: datetime | None = None  # first install
    last_installed_at: datetime | None = None
    setup_failed_at: datetime | None = None  # latest failed setup
    setup_failures: int = 0
    uninstalled_at: datetime | None = None  # latest uninstall
    auth_expired_at: datetime | None = None  # latest auth.expired
    auth_restored_at: datetime | None = None  # latest auth.restored
    activated_at: datetime | None = None  # first successful sync
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    last_event_at: datetime | None = None
    # Configuration depth from the latest integration.configured event.
    config: dict[str, Any] | None = _json()
    configured_at: datetime | None = None
    state: str | None = None  # active | broken | idle | uninstalled | installed
    state_as_of: datetime | None = None


class DailyUsage(SQLModel, table=True):
    """Per connection and UTC day: what happened, summed."""

    __tablename__ = "daily_usage"
    __table_args__ = (
        Index("ix_daily_usage_day", "day"),
        # Covering index for scoring's per-connection day-range sums (migration 0002).
        Index(
            "ix_daily_usage_scoring",
            "connection_id",
            "day",
            "successes",
            "failures",
            "automated",
            "manual",
            "records",
            "bytes",
            "api_calls",
        ),
        {"sqlite_with_rowid": False},
    )

    connection_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    account_id: str
    integration: str
    successes: int = 0
    failures: int = 0
    automated: int = 0  # successful syncs triggered by schedule or webhook
    manual: int = 0
    records: int = Field(default=0, sa_type=BigInteger)
    bytes: int = Field(default=0, sa_type=BigInteger)
    api_calls: int = Field(default=0, sa_type=BigInteger)
    first_success_at: datetime | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None


class Quarantine(SQLModel, table=True):
    """An input line that broke a rule, kept verbatim with why and where."""

    __tablename__ = "quarantine"

    id: int | None = Field(default=None, primary_key=True)
    # sha256 of source + line number + raw text: re-ingesting a file does not add twice.
    key: str = Field(unique=True)
    source: str
    line_no: int
    reason: str
    raw: str
    received_at: datetime


class AccountScore(SQLModel, table=True):
    """The current score of each account (one row per account)."""

    __tablename__ = "account_scores"
    # The dashboard's live updates ask "rescored since T" (migration 0003).
    __table_args__ = (
        Index("ix_account_scores_scored_at", "scored_at"),
        # Covering index for the portfolio (migration 0003). PostgreSQL: segments is an
        # INCLUDE column (json has no btree opclass); SQLite has no INCLUDE, and the
        # migration makes segments its last key column there.
        Index(
            "ix_account_scores_portfolio",
            "account_id",
            "score",
            "band",
            "stage",
            "active_integrations",
            postgresql_include=["segments"],
        ),
    )

    account_id: str = Field(primary_key=True)
    as_of: datetime
    scored_at: datetime
    score: int
    band: str
    stage: str = "scored"  # scored | onboarding
    components: dict[str, Any] | None = _json()
    reason: str | None = None
    segments: list[str] | None = _json()
    active_integrations: int = 0
    percentiles: dict[str, Any] | None = _json()
    config_version: str | None = None
    inputs_hash: str | None = None
    # Onboarding progress and other explanation beyond the six components.
    details: dict[str, Any] | None = _json()


class ScoreHistory(SQLModel, table=True):
    """One row per account per scoring run that changed its score."""

    __tablename__ = "score_history"
    __table_args__ = (Index("ix_score_history_account_asof", "account_id", "as_of"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str
    as_of: datetime
    scored_at: datetime
    score: int
    band: str
    stage: str = "scored"
    components: dict[str, Any] | None = _json()
    segments: list[str] | None = _json()
    config_version: str | None = None


class ScoringRun(SQLModel, table=True):
    __tablename__ = "scoring_runs"

    id: int | None = Field(default=None, primary_key=True)
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None = None
    full: bool = False
    rescored: int = 0
    changed: int = 0
    config_version: str | None = None
    # The newest accounts.data_changed_at seen when the run started: the next
    # incremental run rescores accounts changed after it (clock-independent).
    watermark: datetime | None = None


class Signal(SQLModel, table=True):
    """One episode of a signal: fired when its condition started, resolved when it cleared."""

    __tablename__ = "signals"
    __table_args__ = (
        Index(
            "uq_signals_open_episode",
            "account_id",
            "kind",
            "subject",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(index=True)
    kind: str
    # What the episode is about inside the account: a connection id, or "" for the account.
    subject: str = ""
    status: str = "open"  # open | resolved
    fired_at: datetime
    resolved_at: datetime | None = None
    details: dict[str, Any] | None = _json()


class Task(SQLModel, table=True):
    """A playbook task for a person, born from a signal."""

    __tablename__ = "tasks"

    id: int | None = Field(default=None, primary_key=True)
    signal_id: int | None = Field(default=None, index=True)
    account_id: str = Field(index=True)
    signal_kind: str
    title: str
    body: str | None = None
    owner: str | None = None
    due_at: datetime | None = None
    status: str = "open"  # open | claimed | done | snoozed
    claimed_by: str | None = None
    snoozed_until: datetime | None = None
    overdue_at: datetime | None = None
    reminded_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    slack_channel: str | None = None
    slack_ts: str | None = None
    posted_at: datetime | None = None


class TaskEvent(SQLModel, table=True):
    """Who changed a task, when, and how."""

    __tablename__ = "task_events"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(index=True)
    at: datetime
    actor: str
    action: str
    from_status: str | None = None
    to_status: str | None = None
    note: str | None = None


class SyncMatch(SQLModel, table=True):
    """Which CRM record an account was matched to, remembered once found."""

    __tablename__ = "sync_matches"

    destination: str = Field(primary_key=True)
    account_id: str = Field(primary_key=True)
    record_id: str = Field(index=True)
    matched_by: str  # id | domain
    matched_at: datetime


class SyncLedger(SQLModel, table=True):
    """What this tool last confirmed written, per destination, record and field."""

    __tablename__ = "sync_ledger"

    destination: str = Field(primary_key=True)
    record_id: str = Field(primary_key=True)
    field: str = Field(primary_key=True)
    value: str | None = None
    written_at: datetime
    run_id: int | None = None


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_runs"

    id: int | None = Field(default=None, primary_key=True)
    destination: str
    started_at: datetime
    finished_at: datetime | None = None
    dry_run: bool = False
    full: bool = False
    status: str = "running"  # running | ok | failed | stopped
    planned: int = 0
    written: int = 0
    unchanged: int = 0
    failed: int = 0
    unmatched: int = 0
    api_calls: int = 0
    error: str | None = None
    details: dict[str, Any] | None = _json()


class JobRun(SQLModel, table=True):
    """One tick of one scheduled job; the key makes a tick run once across processes."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job_id", "scheduled_at"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"  # running | ok | failed
    error: str | None = None
    host: str | None = None


class ItemFailure(SQLModel, table=True):
    """One item of a scheduled or batch job that failed (a task to post, a reminder, a
    day's digest, a CRM record): why, how often in a row, when it is tried again, and
    when its one alert went out. The row is deleted when the item succeeds."""

    __tablename__ = "item_failures"
    __table_args__ = (Index("ix_item_failures_due", "job", "next_attempt_at"),)

    job: str = Field(primary_key=True)  # "tasks.post", "sync.salesforce", ...
    item: str = Field(primary_key=True)  # the item's key within the job ("42", "task:42")
    failures: int = 0
    last_error: str
    first_failed_at: datetime
    last_failed_at: datetime
    next_attempt_at: datetime
    alerted_at: datetime | None = None


class KeyValue(SQLModel, table=True):
    """Small named state: cursors of SQL pulls, feed markers."""

    __tablename__ = "kv"

    key: str = Field(primary_key=True)
    value: dict[str, Any] | None = _json()
    updated_at: datetime


class User(SQLModel, table=True):
    """A person who may sign in to the web dashboard (managed with `signals users`)."""

    __tablename__ = "users"

    email: str = Field(primary_key=True)  # lower-cased
    role: str  # admin | csm | viewer
    password_hash: str
    created_at: datetime


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its sha256 is kept."""

    __tablename__ = "web_sessions"

    token_hash: str = Field(primary_key=True)
    email: str = Field(index=True)
    csrf_token: str
    created_at: datetime
    expires_at: datetime = Field(index=True)
    last_seen_at: datetime
