"""Settings: the environment (secrets, URLs) and the TOML config (catalog, scoring, rules).

Read in one place, validated at start-up; everything below the entry point receives
these objects. A bad config is refused with one line naming the key.
"""

from __future__ import annotations

import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Category = Literal[
    "crm", "data_warehouse", "cdp", "marketing", "support", "analytics", "messaging", "other"
]
Rhythm = Literal["daily", "weekly", "situational"]

ACTIVE_WINDOW_DAYS: dict[str, int] = {"daily": 7, "weekly": 14, "situational": 30}


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
    batch_size: int = Field(20000, ge=1, le=100_000)


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
    shutdown_grace_seconds: float = Field(20, ge=0)
    pull: PullConfig = PullConfig()


class ServeConfig(_Strict):
    """The HTTP side of `signals serve`."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(5_000_000, ge=1024)
    # Extra Segment track names -> our event types (the built-in names need no entry).
    segment_events: dict[str, str] = {}


class Config(_Strict):
    """The whole TOML configuration after defaults are merged in."""

    integrations: dict[str, IntegrationDef]
    ingest: IngestConfig = IngestConfig()
    schedules: SchedulesConfig = SchedulesConfig()
    serve: ServeConfig = ServeConfig()

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


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def default_config_text() -> str:
    return (Path(__file__).parent / "defaults.toml").read_text("utf-8")


def _error_line(source: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
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
        data = _deep_merge(data, user)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_error_line(source, exc)) from None


class Settings(BaseSettings):
    """Environment settings: where the database is, which config file, credentials.

    Secret values are ``SecretStr`` and never printed.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    signals_database_url: str = "sqlite:///signals.db"
    signals_config: str | None = None
    signals_ingest_token: SecretStr | None = None
    # The SQL source of the ingest pull (any SQLAlchemy URL; may hold a password).
    signals_pull_url: SecretStr | None = None

    salesforce_instance_url: str | None = None
    salesforce_access_token: SecretStr | None = None
    salesforce_username: str | None = None
    salesforce_password: SecretStr | None = None
    salesforce_security_token: SecretStr | None = None
    salesforce_domain: str | None = None

    hubspot_access_token: SecretStr | None = None
    hubspot_api_url: str | None = None

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_tasks_channel: str | None = None
    slack_api_url: str | None = None

    @property
    def database_url(self) -> str:
        return self.signals_database_url

    @cached_property
    def config(self) -> Config:
        return load_config(self.signals_config)
