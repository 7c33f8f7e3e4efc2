"""HubSpot company properties as a destination."""

from __future__ import annotations

from typing import Any

from integration_signals.config import Config, Settings
from integration_signals.syncs.contract import Destination, Sink
from integration_signals.syncs.hubspot import mapping
from integration_signals.syncs.hubspot.settings import HubSpotEnv, HubSpotSyncConfig


def _open(config: Config, settings: Settings) -> Sink:
    from integration_signals.syncs.hubspot.sink import HubSpotSink

    return HubSpotSink(config, settings)


def _record_url(config: Config, settings: Settings) -> str | None:
    return config.bot.hubspot_record_url or None


def _provision(config: Config, settings: Settings) -> Any:
    from integration_signals.syncs.hubspot.sink import provision

    return provision(config, settings)


DESTINATION = Destination(
    name="hubspot",
    label="HubSpot",
    target="HubSpot company properties",
    credentials_hint="set HUBSPOT_ACCESS_TOKEN (and HUBSPOT_API_URL for a proxy)",
    settings_model=HubSpotSyncConfig,
    env_model=HubSpotEnv,
    has_credentials=lambda settings: settings.env(HubSpotEnv).configured,
    field_map=mapping.field_map,
    open_sink=_open,
    id_column="hubspot_id",
    record_url=_record_url,
    provision=_provision,
)
