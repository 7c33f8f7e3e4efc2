"""Our values as Salesforce Account fields: their types (as shipped in ``force-app/``)
and the conversion of ledger strings into what the REST and Bulk APIs take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integration_signals.settings import Config

# value name -> (SFDX field type, length/precision note) for the shipped metadata.
KINDS: dict[str, str] = {
    "score": "number",
    "band": "text",
    "segments": "text",
    "expansion_ready": "checkbox",
    "active_integrations": "number",
    "reason": "text",
    "scored_at": "datetime",
}


def field_map(config: Config) -> dict[str, str]:
    return {k: v for k, v in config.syncs.salesforce.fields.items() if v}


def _kind_of(field_map: Mapping[str, str]) -> dict[str, str]:
    return {name: KINDS[key] for key, name in field_map.items()}


def to_rest(values: Mapping[str, str], field_map: Mapping[str, str]) -> dict[str, Any]:
    """Ledger strings -> JSON values for sObject Collections ("" clears the field)."""
    kinds = _kind_of(field_map)
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = kinds.get(name, "text")
        if value == "":
            out[name] = False if kind == "checkbox" else None
        elif kind == "number":
            out[name] = int(value)
        elif kind == "checkbox":
            out[name] = value == "true"
        else:
            out[name] = value
    return out


def to_csv_cell(value: str | None) -> str:
    """A Bulk API 2.0 cell: an empty cell leaves the field as it is, ``#N/A`` clears it;
    None means this record does not change the column."""
    if value is None:
        return ""
    return "#N/A" if value == "" else value
