"""HubSpot's settings: the ``[syncs.hubspot]`` table and its environment."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from integration_signals.config import Config, check_field_map
from integration_signals.syncs.contract import load_section


class HubSpotSyncConfig(BaseModel):
    """Where and how values are written to HubSpot company properties."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: dict[str, str] = {
        "score": "integration_health_score",
        "band": "integration_health_band",
        "segments": "integration_segments",
        "expansion_ready": "expansion_ready",
        "active_integrations": "active_integrations",
        "reason": "integration_health_reason",
        "scored_at": "integration_scored_at",
    }
    batch_size: int = Field(100, ge=1, le=100)
    concurrency: int = Field(8, ge=1, le=16)
    requests_per_window: int = Field(100, ge=1)
    window_seconds: float = Field(10.0, gt=0)
    search_per_second: float = Field(4.0, gt=0)
    domain_search_chunk: int = Field(5, ge=1, le=5)
    property_group: str = "integration_signals"
    property_group_label: str = "Integration Signals"

    @field_validator("fields")
    @classmethod
    def _known_values(cls, value: dict[str, str]) -> dict[str, str]:
        return check_field_map(value)


class HubSpotEnv(BaseSettings):
    """``HUBSPOT_ACCESS_TOKEN`` (a private app token); ``HUBSPOT_API_URL`` overrides the
    base URL (tests, proxies)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    hubspot_access_token: SecretStr | None = None
    hubspot_api_url: str | None = None

    @property
    def configured(self) -> bool:
        """A token is set (an empty one counts as unset, as the scheduler always did)."""
        return bool(self.hubspot_access_token)


def sync_config(config: Config) -> HubSpotSyncConfig:
    """The ``[syncs.hubspot]`` table, typed."""
    return load_section(config, "hubspot", HubSpotSyncConfig)
