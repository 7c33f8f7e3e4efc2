"""Salesforce Account fields as a destination."""

from __future__ import annotations

from integration_signals.config import Config, Settings
from integration_signals.syncs.contract import Destination, Sink
from integration_signals.syncs.salesforce import mapping


def _has_credentials(s: Settings) -> bool:
    return bool(
        (s.salesforce_instance_url and s.salesforce_access_token)
        or (s.salesforce_username and s.salesforce_password)
    )


def _open(config: Config, settings: Settings) -> Sink:
    from integration_signals.syncs.salesforce.sink import SalesforceSink

    return SalesforceSink(config, settings)


DESTINATION = Destination(
    name="salesforce",
    label="Salesforce",
    id_column="salesforce_id",
    credentials_hint=(
        "set SALESFORCE_INSTANCE_URL and SALESFORCE_ACCESS_TOKEN, or SALESFORCE_USERNAME,"
        " SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN"
    ),
    has_credentials=_has_credentials,
    field_map=mapping.field_map,
    open_sink=_open,
    record_id=mapping.record_id,
)
