"""Our values as Salesforce Account fields: their types (as shipped in ``force-app/``)
and the conversion of ledger strings into what the REST and Bulk APIs take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integration_signals.config import Config
from integration_signals.syncs.salesforce.settings import sync_config

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


_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def record_id(value: str) -> str:
    """Salesforce ids come as 15 case-sensitive or 18 case-insensitive characters; the
    API answers with 18. Use 18 everywhere so one record is never two ledger entries."""
    value = value.strip()
    if len(value) != 15:
        return value
    suffix = ""
    for i in range(3):
        chunk = value[i * 5 : i * 5 + 5]
        bits = sum(1 << j for j, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _SUFFIX[bits]
    return value + suffix


def field_map(config: Config) -> dict[str, str]:
    return {k: v for k, v in sync_config(config).fields.items() if v}


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


TASK_EXTERNAL_ID = "Integration_Signals_Task_Id__c"
_TASK_STATUS = {
    "open": "Not Started",
    "claimed": "In Progress",
    "snoozed": "Deferred",
    "done": "Completed",
}
_HIGH = {"health_degradation", "auth_expired", "abandonment"}


def task_values(task: Mapping[str, Any], what_id: str) -> dict[str, str]:
    """A playbook task as a Salesforce Task on the Account (ledger strings)."""
    due = task.get("due_at")
    body = (task.get("body") or "").strip()
    note = f"Integration Signals task #{task['id']} ({task['signal_kind']})"
    return {
        "WhatId": what_id,
        "Subject": str(task["title"])[:255],
        "Description": f"{body}\n\n{note}".strip()[:32000],
        "Status": _TASK_STATUS.get(str(task["status"]), "Not Started"),
        "Priority": "High" if task["signal_kind"] in _HIGH else "Normal",
        "ActivityDate": due.date().isoformat() if due is not None else "",
    }
