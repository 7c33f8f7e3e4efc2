"""Our values as HubSpot company properties: the property definitions that
`signals provision hubspot` creates, and the conversion of ledger strings into property
values (HubSpot takes every property value as a string)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integration_signals.config import Config
from integration_signals.syncs.hubspot.settings import sync_config

BAND_OPTIONS = [("Healthy", "healthy"), ("Watch", "watch"), ("At risk", "at_risk")]

# value name -> (label, type, fieldType, description)
DEFINITIONS: dict[str, tuple[str, str, str, str]] = {
    "score": ("Integration health score", "number", "number", "Overall score 0-100."),
    "band": ("Integration health band", "enumeration", "select", "healthy, watch or at_risk."),
    "segments": (
        "Integration segments",
        "string",
        "text",
        "Segments such as expansion-ready and at-risk, ';'-joined.",
    ),
    "expansion_ready": (
        "Expansion ready",
        "bool",
        "booleancheckbox",
        "The account is in the expansion-ready segment.",
    ),
    "active_integrations": (
        "Active integrations",
        "number",
        "number",
        "Connections that synced successfully within their active window.",
    ),
    "reason": (
        "Integration health reason",
        "string",
        "text",
        "The top reason behind the score (at most 255 characters).",
    ),
    "scored_at": ("Integration scored at", "datetime", "date", "When the score was computed."),
}


def field_map(config: Config) -> dict[str, str]:
    return {k: v for k, v in sync_config(config).fields.items() if v}


def property_definition(key: str, name: str, group: str) -> dict[str, Any]:
    label, type_, field_type, description = DEFINITIONS[key]
    definition: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "groupName": group,
        "description": description,
    }
    if key == "band":
        definition["options"] = [
            {"label": lab, "value": val, "displayOrder": i, "hidden": False}
            for i, (lab, val) in enumerate(BAND_OPTIONS)
        ]
    if key == "expansion_ready":
        definition["options"] = [
            {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
            {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
        ]
    return definition


def to_properties(values: Mapping[str, str]) -> dict[str, str]:
    """Ledger strings are already HubSpot's string forms ("" clears a property)."""
    return dict(values)
