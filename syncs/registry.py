"""The destinations, by name. A new CRM is one folder under ``syncs/`` exposing
``DESTINATION`` (see ``syncs.contract.Destination``) and one name here."""

from __future__ import annotations

import importlib

from integration_signals.syncs.contract import Destination
from integration_signals.syncs.exceptions import FatalSyncError

DESTINATIONS = ("salesforce", "hubspot")


def get_destination(name: str) -> Destination:
    if name not in DESTINATIONS:
        raise FatalSyncError(
            f"unknown destination {name!r}; choose one of {', '.join(DESTINATIONS)}"
        )
    module = importlib.import_module(f"integration_signals.syncs.{name}")
    destination: Destination = module.DESTINATION
    return destination
