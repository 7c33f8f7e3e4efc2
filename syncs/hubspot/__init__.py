"""HubSpot company properties as a destination."""

from __future__ import annotations

from integration_signals.config import Config, Settings
from integration_signals.syncs.contract import Destination, Sink
from integration_signals.syncs.hubspot import mapping


def _open(config: Config, settings: Settings) -> Sink:
    from integration_signals.syncs.hubspot.sink import HubSpotSink

    return HubSpotSink(config, settings)


DESTINATION = Destination(
    name="hubspot",
    label="HubSpot",
    id_column="hubspot_id",
    credentials_hint="set HUBSPOT_ACCESS_TOKEN (and HUBSPOT_API_URL for a proxy)",
    has_credentials=lambda s: s.hubspot_access_token is not None,
    field_map=mapping.field_map,
    open_sink=_open,
)
