"""Settings: the environment (secrets, URLs) and the TOML config (catalog, scoring, rules).

Read in one place, validated at start-up; everything below the entry point receives
these objects. A bad config is refused with one line naming the key.
"""

from __future__ import annotations

import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Category = Literal[
    "crm", "data_warehouse", "cdp", "marketing", "support", "analytics", "messaging", "other"
]
Rhythm = Literal["daily", "weekly", "situational"]

ACTIVE_WINDOW_DAYS: dict[str, int] = {"daily": 7, "weekly": 14, "situational": 30}


EnvModel = TypeVar("EnvModel", bound=BaseSettings)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntegrationDef(_Strict):
    """One entry of the integration catalog."""

    name: str
    category: Category = "other"
    rhythm: Rhythm = "daily"

    @property
    def active_window_days(self) -> int:
        return ACTIVE_WINDOW_DAYS[self.rhythm]


class IngestConfig(_Strict):
    max_clock_skew_hours: float = Field(24, gt=0)
    batch_size: int = Field(100_000, ge=1, le=1_000_000)
    # Rescore the accounts an ingest touched, at once, as of now. Off for backfills of
    # history: store only, then `signals replay` builds the history day by day.
    rescore: bool = True


class ImpactConfig(_Strict):
    """Impact analysis, backtest and outcome model defaults (SPEC section 4, issue 8)."""

    # Without --as-of, adoption is measured up to this many days ago and outcomes since.
    outcome_window_days: int = Field(90, ge=1, le=3650)
    # Successful syncs on this many distinct UTC days make an account an adopter.
    adoption_days: int = Field(3, ge=1, le=365)
    exact: list[str] = ["segment", "plan", "industry"]
    near: list[str] = ["employees", "mrr", "tenure"]
    # Matched controls per adopter (nearest neighbours, with replacement).
    neighbors: int = Field(3, ge=1, le=20)
    # Largest distance, in standard deviations of the standardised covariates; 0 = none.
    caliper: float = Field(0.0, ge=0)
    bootstrap: int = Field(1000, ge=50, le=100_000)
    seed: int = 0
    # Fewer matched adopters than this and no lift is reported.
    min_adopters: int = Field(10, ge=2)
    # Backtest and outcome-model horizon: churn within this many days counts.
    horizon_days: int = Field(90, ge=1, le=3650)
    # The outcome model learns from snapshots this many days apart; the newest is held out.
    model_snapshots: int = Field(3, ge=2, le=24)
    model_step_days: int = Field(30, ge=1, le=365)
    # Integration pairs need at least this many accounts adopting both.
    pair_min_support: int = Field(10, ge=2)


COMPONENTS = (
    "activation_depth",
    "usage_volume",
    "health_status",
    "frequency",
    "sophistication",
    "growth",
)
SEGMENTS = ("smb", "mid_market", "enterprise")


def _check_weights(value: dict[str, float] | None) -> dict[str, float] | None:
    if value is None:
        return value
    unknown = sorted(set(value) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"unknown component {unknown[0]!r}; use {', '.join(COMPONENTS)}")
    missing = [c for c in COMPONENTS if c not in value]
    if missing:
        raise ValueError(f"weight for {missing[0]} is missing; name all six components")
    if any(w < 0 for w in value.values()):
        raise ValueError("weights must not be negative")
    total = sum(value.values())
    if abs(total - 100) > 1e-6:
        raise ValueError(f"weights must sum to 100 (they sum to {total:g})")
    return value


class Bands(_Strict):
    """Overall score bands: healthy >= healthy, watch >= watch, at_risk below."""

    healthy: int = Field(75, ge=0, le=100)
    watch: int = Field(50, ge=0, le=100)


class ActivationThresholds(_Strict):
    """Active integrations expected of a segment (healthy: N+ active from C+ categories)."""

    healthy_active: int = Field(ge=1)
    healthy_categories: int = Field(ge=1)
    at_risk_active: int = Field(ge=0)
    # Where the count scores 100 (enterprise accounts average 8-12).
    top_active: int = Field(ge=1)


class VolumeThresholds(_Strict):
    healthy_calls_per_day: float = Field(1000, gt=0)
    healthy_records_per_week: float = Field(10000, gt=0)
    at_risk_calls_per_day: float = Field(100, gt=0)
    at_risk_records_per_week: float = Field(1000, gt=0)


class HealthThresholds(_Strict):
    healthy_success_rate: float = Field(0.95, gt=0, le=1)
    at_risk_success_rate: float = Field(0.80, gt=0, le=1)
    healthy_errors_per_week: float = Field(5, ge=0)
    at_risk_errors_per_week: float = Field(25, gt=0)
    at_risk_days_since_success: float = Field(3, gt=1)


class FrequencyThresholds(_Strict):
    """Mean days between uses (relative to the integration's cadence) and automation."""

    healthy_gap_days: float = Field(1.5, ge=1)
    at_risk_gap_days: float = Field(7, gt=1)
    healthy_automated_share: float = Field(0.9, gt=0, le=1)


class SophisticationThresholds(_Strict):
    """Advanced features in use: bidirectional, custom fields, filters, transformations,
    3+ objects. Basic config only (0) is at risk."""

    healthy_features: float = Field(2, gt=0, le=5)


class GrowthThresholds(_Strict):
    healthy_growth: float = Field(0.20, gt=-1)
    at_risk_growth: float = Field(-0.05, gt=-1)
    points_per_new_integration: float = Field(10, ge=0)


class SegmentOverride(_Strict):
    """Per-segment overrides of the scoring section; unnamed keys keep the defaults."""

    weights: dict[str, float] | None = None
    bands: Bands | None = None
    volume: VolumeThresholds | None = None
    health: HealthThresholds | None = None
    frequency: FrequencyThresholds | None = None
    sophistication: SophisticationThresholds | None = None
    growth: GrowthThresholds | None = None

    _weights = field_validator("weights")(classmethod(lambda cls, v: _check_weights(v)))


_ACTIVATION_DEFAULTS = {
    "smb": ActivationThresholds(
        healthy_active=3, healthy_categories=2, at_risk_active=1, top_active=5
    ),
    "mid_market": ActivationThresholds(
        healthy_active=4, healthy_categories=2, at_risk_active=1, top_active=7
    ),
    "enterprise": ActivationThresholds(
        healthy_active=5, healthy_categories=3, at_risk_active=2, top_active=10
    ),
}


class ScoringConfig(_Strict):
    """The health score: weights (sum 100), thresholds, bands, per-segment overrides."""

    weights: dict[str, float] = {
        "activation_depth": 25,
        "usage_volume": 25,
        "health_status": 20,
        "frequency": 15,
        "sophistication": 10,
        "growth": 5,
    }
    bands: Bands = Bands()
    onboarding_days: int = Field(90, ge=0)
    # Segment used for accounts without one.
    default_segment: Literal["smb", "mid_market", "enterprise"] = "smb"
    activation: dict[str, ActivationThresholds] = _ACTIVATION_DEFAULTS
    volume: VolumeThresholds = VolumeThresholds()
    health: HealthThresholds = HealthThresholds()
    frequency: FrequencyThresholds = FrequencyThresholds()
    sophistication: SophisticationThresholds = SophisticationThresholds()
    growth: GrowthThresholds = GrowthThresholds()
    # Expected days between syncs per rhythm (days since a good sync count from there).
    cadence_days: dict[str, float] = {"daily": 1, "weekly": 7, "situational": 30}
    segments: dict[str, SegmentOverride] = {}

    _weights = field_validator("weights")(classmethod(lambda cls, v: _check_weights(v)))

    @field_validator("activation")
    @classmethod
    def _all_segments(
        cls, value: dict[str, ActivationThresholds]
    ) -> dict[str, ActivationThresholds]:
        merged = {**_ACTIVATION_DEFAULTS, **value}
        for key in merged:
            if key not in SEGMENTS:
                raise ValueError(f"segment {key!r} must be one of {', '.join(SEGMENTS)}")
        return merged

    @field_validator("segments")
    @classmethod
    def _known_segments(cls, value: dict[str, SegmentOverride]) -> dict[str, SegmentOverride]:
        for key in value:
            if key not in SEGMENTS:
                raise ValueError(f"segment {key!r} must be one of {', '.join(SEGMENTS)}")
        return value


class IntegrationActivatedRule(_Strict):
    """The account reached ``min_active`` active integrations within ``window_days``."""

    min_active: int = Field(3, ge=1)
    window_days: int = Field(60, ge=1)


class ApiLimitRule(_Strict):
    """The average daily API calls reached ``threshold`` of the plan's daily limit."""

    threshold: float = Field(0.75, gt=0, le=1)
    average_days: int = Field(7, ge=1, le=90)
    trend_days: int = Field(28, ge=3, le=180)
    lead_days: int = Field(30, ge=0)
    due_days_without_projection: int = Field(30, ge=0)
    horizon_days: int = Field(730, ge=1)


class HealthDegradationRule(_Strict):
    """A connection's 7-day sync success fell below ``min_success_rate``."""

    min_success_rate: float = Field(0.80, gt=0, le=1)
    min_attempts: int = Field(5, ge=1)
    due_hours: float = Field(4, ge=0)


class AbandonmentRule(_Strict):
    """A previously active connection had no usage for ``idle_days``."""

    idle_days: int = Field(14, ge=1)
    # Situational integrations (30-day active window) wait for their window instead.
    respect_rhythm: bool = True


class AuthExpiredRule(_Strict):
    due_hours: float = Field(4, ge=0)


class OnboardingRules(_Strict):
    """The activation journey of the seeds' playbook, in days since ``created_at``."""

    period_days: int = Field(90, ge=1)
    first_sync_by_day: int = Field(5, ge=1)
    first_sync_due_day: int = Field(7, ge=1)
    min_active: int = Field(3, ge=1)
    active_by_day: int = Field(60, ge=1)
    low_activation_due_days: int = Field(7, ge=0)


class SignalsConfig(_Strict):
    """Thresholds of the signal rules, who gets tasks, and the feed guard."""

    feed_stale_hours: float = Field(6, gt=0)
    recently_resolved_days: int = Field(30, ge=0)
    # Owner of a task whose account lacks the CSM / account executive it needs, and of
    # the feed_stale alert. Empty: such tasks have no owner (the bot posts them to the
    # tasks channel).
    fallback_owner: str = ""
    alert_owner: str = ""
    at_risk_bands: list[str] = ["at_risk"]
    integration_activated: IntegrationActivatedRule = IntegrationActivatedRule()
    api_limit_proximity: ApiLimitRule = ApiLimitRule()
    health_degradation: HealthDegradationRule = HealthDegradationRule()
    abandonment: AbandonmentRule = AbandonmentRule()
    auth_expired: AuthExpiredRule = AuthExpiredRule()
    onboarding: OnboardingRules = OnboardingRules()


class ChannelScope(_Strict):
    """The accounts one Slack channel may see: listed ids and whole account segments."""

    accounts: list[str] = []
    segments: list[Literal["smb", "mid_market", "enterprise"]] = []


class BotConfig(_Strict):
    """The Slack bot: command, where tasks go, what a channel may see, CRM links."""

    command: str = Field("/integration-health", pattern=r"^/[a-z0-9_-]{1,31}$")
    response_type: Literal["ephemeral", "in_channel"] = "ephemeral"
    tasks_to: Literal["channel", "owner"] = "channel"
    list_size: int = Field(10, ge=1, le=30)
    max_integrations: int = Field(15, ge=1, le=40)
    post_batch: int = Field(50, ge=1, le=1000)
    post_lease_minutes: int = Field(10, ge=1, le=1440)
    digest_channel: str | None = None
    salesforce_record_url: str = ""
    hubspot_record_url: str = ""
    access_default: Literal["all", "none"] = "all"
    access: dict[str, ChannelScope] = {}

    @field_validator("salesforce_record_url", "hubspot_record_url")
    @classmethod
    def _has_id_placeholder(cls, value: str) -> str:
        if value and "{id}" not in value:
            raise ValueError("must contain {id} where the record id goes")
        return value


class PullConfig(_Strict):
    """An ingest pull from any SQL database (SIGNALS_PULL_URL names it): ``query`` must
    return event columns; rows are read incrementally by ``cursor_column``."""

    query: str = ""
    cursor_column: str = "occurred_at"
    batch_size: int = Field(5000, ge=1, le=100_000)
    name: str = Field("sql", pattern=r"^[a-z0-9_\-]+$")


class SchedulesConfig(_Strict):
    """When each job runs. Ticks are counted from ``daily_at`` (UTC) on 2000-01-01, so every
    process computes the same ticks and daily jobs run at that time of day."""

    daily_at: str = Field("08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    score_minutes: float = Field(15, gt=0)
    sync_minutes: float = Field(15, gt=0)
    task_post_minutes: float = Field(1, gt=0)
    reminders_minutes: float = Field(1440, gt=0)
    digest_minutes: float = Field(1440, gt=0)
    pull_minutes: float = Field(5, gt=0)
    prune_minutes: float = Field(1440, gt=0)
    keep_job_runs_days: int = Field(30, ge=1)
    misfire_grace_seconds: float = Field(300, gt=0)
    stale_after_intervals: float = Field(3, gt=0)
    alert_after_failures: int = Field(3, ge=1)
    # One bad item of a job (a task, a reminder, the digest, a CRM record): retried after
    # item_retry_minutes, doubling up to item_retry_max_minutes; one alert at the Nth failure.
    item_alert_after: int = Field(3, ge=1)
    item_retry_minutes: float = Field(1, gt=0)
    item_retry_max_minutes: float = Field(60, gt=0)
    shutdown_grace_seconds: float = Field(20, ge=0)
    pull: PullConfig = PullConfig()


class ServeConfig(_Strict):
    """The HTTP side of `signals serve`."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(5_000_000, ge=1024)
    # Extra Segment track names -> our event types (the built-in names need no entry).
    segment_events: dict[str, str] = {}


class LogConfig(_Strict):
    """How `signals serve` writes its log (stderr). ``SIGNALS_LOG_FORMAT`` overrides
    ``format``."""

    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"


class WebConfig(_Strict):
    """The web dashboard served by `signals serve`."""

    # Send the session cookie only over HTTPS (set it when a TLS proxy is in front).
    secure_cookies: bool = False
    session_hours: float = Field(12, gt=0, le=24 * 30)
    page_size: int = Field(50, ge=5, le=500)
    live_poll_seconds: float = Field(2, ge=0.5, le=60)


SYNC_VALUES = (
    "score",
    "band",
    "segments",
    "expansion_ready",
    "active_integrations",
    "reason",
    "scored_at",
)


def check_field_map(value: dict[str, str]) -> dict[str, str]:
    """A destination's ``fields`` table: value name -> the CRM's field name."""
    unknown = sorted(set(value) - set(SYNC_VALUES))
    if unknown:
        raise ValueError(f"unknown value {unknown[0]!r}; values are {', '.join(SYNC_VALUES)}")
    return value


class SyncSection(BaseModel):
    """One ``[syncs.<destination>]`` table as written in the TOML (defaults merged in).

    Its keys belong to the destination, which declares them in its own settings model
    (``syncs/<name>/settings.py``) and validates them through the syncs registry at
    start-up (the CLI root and ``signals serve`` do). Keeping the table as written here
    lets this lowest layer load any destination's section without knowing it.
    """

    model_config = ConfigDict(extra="allow", frozen=True)


class SyncsConfig(_Strict):
    """Reverse ETL: guards and retries every destination shares, and one
    ``[syncs.<destination>]`` section per destination (see ``SyncSection``)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, SyncSection] = Field(init=False)  # type: ignore[assignment]

    band_change_guard: float = Field(0.2, ge=0, le=1)
    max_attempts: int = Field(6, ge=1, le=20)
    backoff_initial_seconds: float = Field(1.0, ge=0)
    backoff_max_seconds: float = Field(60.0, ge=0)
    request_timeout_seconds: float = Field(30.0, gt=0)

    def section(self, name: str) -> dict[str, Any]:
        """The ``[syncs.<name>]`` table as written ({} when there is none)."""
        found = (self.model_extra or {}).get(name)
        return found.model_dump() if found is not None else {}


class Config(_Strict):
    """The whole TOML configuration after defaults are merged in."""

    integrations: dict[str, IntegrationDef]
    ingest: IngestConfig = IngestConfig()
    impact: ImpactConfig = ImpactConfig()
    schedules: SchedulesConfig = SchedulesConfig()
    serve: ServeConfig = ServeConfig()
    syncs: SyncsConfig = SyncsConfig()
    scoring: ScoringConfig = ScoringConfig()
    signals: SignalsConfig = SignalsConfig()
    bot: BotConfig = BotConfig()
    web: WebConfig = WebConfig()
    log: LogConfig = LogConfig()

    @field_validator("integrations")
    @classmethod
    def _keys_are_slugs(cls, value: dict[str, IntegrationDef]) -> dict[str, IntegrationDef]:
        for key in value:
            if not key or key != key.strip().lower() or " " in key:
                raise ValueError(f"integration key {key!r} must be lower-case without spaces")
        return value

    @cached_property
    def version(self) -> str:
        """A short, stable fingerprint of the configuration (recorded with each score)."""
        import hashlib

        import orjson

        blob = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).hexdigest()[:12]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override``'s tables merged key by key into ``base``'s (TOML defaults)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def default_config_text() -> str:
    return (Path(__file__).parent / "defaults.toml").read_text("utf-8")


def error_line(source: str, exc: ValidationError, *, prefix: tuple[str, ...] = ()) -> str:
    """The one line a refused config prints: the file, the key, what is wrong.
    ``prefix``: where the validated table sits (``("syncs", "hubspot")``)."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in (*prefix, *err["loc"])) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"config {source}: key {key}: {msg}; fix or remove it (defaults: `signals init`)"


def load_config(path: str | Path | None = None) -> Config:
    """Built-in defaults, overridden by the TOML file at ``path`` when given."""
    data = tomllib.loads(default_config_text())
    source = "defaults"
    if path:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(
                f"config {source}: cannot read it ({exc.strerror}); check SIGNALS_CONFIG"
            ) from None
        try:
            user = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {source}: not valid TOML ({exc}); fix the file") from None
        data = deep_merge(data, user)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(error_line(source, exc)) from None


class Settings(BaseSettings):
    """Environment settings: where the database is, which config file, credentials.

    Secret values are ``SecretStr`` and never printed.

    CRM credentials are not declared here: each destination declares its environment
    variables (``SALESFORCE_ACCESS_TOKEN``, ``HUBSPOT_ACCESS_TOKEN``, ...) as a small
    settings model (``syncs/<name>/settings.py``) and reads them with
    ``settings.env(model)``, which also decides which are secrets (its ``SecretStr``
    fields, redacted from every report) and whether credentials are set. A value given
    as a keyword to ``Settings(...)`` (kept as an extra, which is how tests pass them)
    wins over the environment.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="allow", case_sensitive=False)

    signals_database_url: str = "sqlite:///signals.db"
    signals_config: str | None = None
    signals_ingest_token: SecretStr | None = None
    # The SQL source of the ingest pull (any SQLAlchemy URL; may hold a password).
    signals_pull_url: SecretStr | None = None

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_tasks_channel: str | None = None
    slack_api_url: str | None = None
    # Overrides `[log] format` (text | json).
    signals_log_format: Literal["text", "json"] | None = None

    @property
    def database_url(self) -> str:
        return self.signals_database_url

    @cached_property
    def config(self) -> Config:
        return load_config(self.signals_config)

    @property
    def config_source(self) -> str:
        """How config errors name the file (``load_config``'s wording)."""
        return str(self.signals_config) if self.signals_config else "defaults"

    def secret_values(self) -> list[str]:
        """The values of every secret this object knows: its declared ``SecretStr``
        fields and secret extras, the password inside the SQL pull URL, and the
        ``SecretStr`` fields of every registered secret model (each destination
        registers its environment model, so this layer never imports ``syncs``)."""
        values = [getattr(self, name) for name in type(self).model_fields]
        values += list((self.model_extra or {}).values())
        for model in list(_SECRET_MODELS):
            env = self.env(model)
            values += [getattr(env, name) for name in type(env).model_fields]
        found = [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
        found += [p for p in map(_url_password, [self.signals_pull_url]) if p]
        found += [p for p in map(_url_password, [self.signals_database_url]) if p]
        return sorted({v for v in found if v}, key=len, reverse=True)

    def redact(self, text: str | None) -> str | None:
        """``text`` with every secret value (``secret_values``), also URL-encoded,
        replaced by ``***``: the one redaction every message leaving a client goes
        through (run records, reports, provisioning, alerts, Slack errors, logs)."""
        return redact_values(text, self.secret_values())

    def answer_redactor(self) -> AnswerRedactor:
        """What every API client applies to each answer where it arrives (Salesforce's
        session hook, HubSpot's one request path, Slack's ``slack_client``): a vendor or
        proxy that echoes our request (its Authorization header, a form field) cannot
        carry a secret into any message built from its answer — per record, per run,
        provisioning, Slack errors, item failures, alerts or logs."""
        return AnswerRedactor(self.secret_values())

    def env(self, model: type[EnvModel]) -> EnvModel:
        """A destination's environment variables, typed by its own settings ``model``.

        A value this object already holds wins (a declared field, or an extra keyword
        given to ``Settings(...)``, even None: ``model_copy(update=...)`` can clear
        credentials); the rest is read from the environment by ``model`` itself."""
        extra = self.model_extra or {}
        given = {
            name: getattr(self, name) if name in type(self).model_fields else extra[name]
            for name in model.model_fields
            if name in type(self).model_fields or name in extra
        }
        return model(**given)


# ---------------------------------------------------------------- redaction

_SECRET_MODELS: list[type[BaseSettings]] = []


def register_secret_model(model: type[BaseSettings]) -> None:
    """Declare an environment model whose ``SecretStr`` fields are secrets every
    report, record and log line is redacted of (a destination registers its own)."""
    if model not in _SECRET_MODELS:
        _SECRET_MODELS.append(model)


def _url_password(value: SecretStr | str | None) -> str | None:
    if value is None:
        return None
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(text).password
    except ValueError:
        return None
    return unquote(password) if password else None


def redact_values(text: str | None, secrets: list[str]) -> str | None:
    """``text`` with each of ``secrets`` (and its URL-encoded form) replaced by ``***``;
    values shorter than 4 characters are left alone (they would blank ordinary words)."""
    if not text:
        return text
    from urllib.parse import quote

    for value in secrets:
        if len(value) < 4:
            continue
        for form in {value, quote(value, safe="")}:
            if form in text:
                text = text.replace(form, "***")
    return text


class AnswerRedactor:
    """Replaces every secret value (and its URL-encoded form) in a vendor's answer,
    text or bytes, by ``***``; the secret list is read once, when a client is built.
    An answer holding none of them is returned as it came (one substring test per
    form, no decoding)."""

    def __init__(self, secrets: list[str]) -> None:
        from urllib.parse import quote

        self.secrets = list(secrets)
        forms = {f for v in secrets if len(v) >= 4 for f in (v, quote(v, safe=""))}
        self.forms = sorted(forms, key=len, reverse=True)
        self._encoded = [f.encode() for f in self.forms]

    def adding(self, *secrets: str) -> AnswerRedactor:
        """This redactor plus credentials a client obtained itself (a session id from
        a login), which no setting holds."""
        return AnswerRedactor([*self.secrets, *secrets])

    def __bool__(self) -> bool:
        return bool(self.forms)

    @overload
    def __call__(self, body: str) -> str: ...
    @overload
    def __call__(self, body: bytes) -> bytes: ...

    def __call__(self, body: str | bytes) -> str | bytes:
        if not body or not self.forms:
            return body
        if isinstance(body, bytes | bytearray):
            if not any(f in body for f in self._encoded):
                return body
            text = bytes(body).decode("utf-8", "surrogateescape")
            return self._replace(text).encode("utf-8", "surrogateescape")
        return self._replace(body)

    def _replace(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, "***")
        return text


class RedactingFilter:
    """A logging filter that redacts every record's message and arguments by value of
    ``settings``' secrets (``Settings.redact``). ``install`` puts it in front of every
    handler at once, through the log record factory, so handlers added later (uvicorn,
    libraries) are covered too."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._secrets = settings.secret_values()

    def filter(self, record: Any) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: leave it to logging's own error path
            return True
        redacted = redact_values(message, self._secrets)
        if redacted != message or record.exc_info or record.exc_text:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            import logging

            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_values(record.exc_text, self._secrets)
        return True

    def install(self) -> None:
        import logging

        previous = logging.getLogRecordFactory()
        if getattr(previous, "_signals_redacting", False):
            previous = previous._signals_previous  # type: ignore[attr-defined]

        def factory(*args: Any, **kwargs: Any) -> Any:
            record = previous(*args, **kwargs)
            self.filter(record)
            return record

        factory._signals_redacting = True  # type: ignore[attr-defined]
        factory._signals_previous = previous  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)
