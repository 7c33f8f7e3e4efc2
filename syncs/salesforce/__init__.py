"""Salesforce Account fields as a destination."""

from __future__ import annotations

from integration_signals.config import Config, Settings
from integration_signals.syncs.contract import Destination, PlaybookTasks, Sink
from integration_signals.syncs.salesforce import mapping
from integration_signals.syncs.salesforce.settings import (
    SalesforceEnv,
    SalesforceSyncConfig,
    sync_config,
)


def _has_credentials(settings: Settings) -> bool:
    return settings.env(SalesforceEnv).configured


def _open(config: Config, settings: Settings) -> Sink:
    from integration_signals.syncs.salesforce.sink import SalesforceSink

    return SalesforceSink(config, settings)


def _record_url(config: Config, settings: Settings) -> str | None:
    """``[bot] salesforce_record_url``, else the Lightning page on the instance."""
    if config.bot.salesforce_record_url:
        return config.bot.salesforce_record_url
    instance = settings.env(SalesforceEnv).salesforce_instance_url
    if instance:
        return f"{instance.rstrip('/')}/lightning/r/Account/{{id}}/view"
    return None


DESTINATION = Destination(
    name="salesforce",
    label="Salesforce",
    target="Salesforce Account fields",
    credentials_hint=(
        "set SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN, or SALESFORCE_USERNAME,"
        " SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN"
    ),
    settings_model=SalesforceSyncConfig,
    env_model=SalesforceEnv,
    has_credentials=_has_credentials,
    field_map=mapping.field_map,
    open_sink=_open,
    id_column="salesforce_id",
    record_id=mapping.record_id,
    record_url=_record_url,
    playbook_tasks=PlaybookTasks(
        enabled=lambda config: sync_config(config).playbook_tasks,
        values=mapping.task_values,
    ),
)
