"""Salesforce's settings: the ``[syncs.salesforce]`` table and its environment."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from integration_signals.config import Config, check_field_map
from integration_signals.syncs.contract import load_section


class SalesforceSyncConfig(BaseModel):
    """Where and how values are written to Salesforce Account fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # value name -> Account field API name; "" leaves the value out.
    fields: dict[str, str] = {
        "score": "Integration_Health_Score__c",
        "band": "Integration_Health_Band__c",
        "segments": "Integration_Segments__c",
        "expansion_ready": "Expansion_Ready__c",
        "active_integrations": "Active_Integrations__c",
        "reason": "Integration_Health_Reason__c",
        "scored_at": "Integration_Scored_At__c",
    }
    api_version: str = "59.0"
    batch_size: int = Field(200, ge=1, le=200)
    bulk_threshold: int = Field(2000, ge=1)
    bulk_poll_seconds: float = Field(2.0, ge=0)
    bulk_timeout_seconds: float = Field(3600, gt=0)
    domain_query_chunk: int = Field(50, ge=1, le=200)
    playbook_tasks: bool = False

    @field_validator("fields")
    @classmethod
    def _known_values(cls, value: dict[str, str]) -> dict[str, str]:
        return check_field_map(value)


class SalesforceEnv(BaseSettings):
    """``SALESFORCE_INSTANCE_URL`` + ``SALESFORCE_ACCESS_TOKEN``, or the username-password
    login (``SALESFORCE_USERNAME`` / ``_PASSWORD`` / ``_SECURITY_TOKEN`` / ``_DOMAIN``)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    salesforce_instance_url: str | None = None
    salesforce_access_token: SecretStr | None = None
    salesforce_username: str | None = None
    salesforce_password: SecretStr | None = None
    salesforce_security_token: SecretStr | None = None
    salesforce_domain: str | None = None

    @property
    def configured(self) -> bool:
        return bool(
            (self.salesforce_instance_url and self.salesforce_access_token)
            or (self.salesforce_username and self.salesforce_password)
        )


def sync_config(config: Config) -> SalesforceSyncConfig:
    """The ``[syncs.salesforce]`` table, typed."""
    return load_section(config, "salesforce", SalesforceSyncConfig)
