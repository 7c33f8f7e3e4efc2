"""Segment's tracking spec (the body of ``POST /v1/batch``) mapped onto our contract.

Pure functions: a batch in, event objects / account objects / ignored counts out.

- ``track`` calls whose name maps to one of our event types become events: the name
  "Integration Sync Succeeded" (any case and spacing, with or without "Integration")
  is ``sync.succeeded``; our own dotted names are accepted as they are; config adds
  more names. ``messageId`` is the event id, ``timestamp`` the time, the account is
  ``context.groupId`` or ``properties.account_id``, and the event fields come from
  ``properties`` (the rest stay in ``properties``).
- ``group`` calls update the account ``groupId``: SPEC account fields by name
  (camelCase too), Segment's ``website`` / ``createdAt`` as ``domain`` / ``created_at``;
  every other trait lands in ``traits``.
- Anything else (identify, page, screen, alias, tracks we do not know) is counted
  as ignored and reported, never stored.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from integration_signals.store.accounts import ACCOUNT_FIELDS
from integration_signals.store.ingest import EVENT_TYPES

_EVENT_FIELDS = ("connection_id", "records", "bytes", "api_calls", "trigger", "error")


class BadBatch(ValueError):
    """The body is not a Segment batch; the message says what is wrong."""


def _words(name: str) -> str:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return " ".join(re.sub(r"[^a-z0-9]+", " ", spaced.lower()).split())


def track_names(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Normalised track name -> event type."""
    names: dict[str, str] = {}
    for etype in EVENT_TYPES:
        words = _words(etype)
        names[words] = etype
        if words.startswith("integration "):
            names[words.removeprefix("integration ")] = etype
        else:
            names["integration " + words] = etype
    names[_words("API Calls Counted")] = "api.calls"
    names[_words("Integration Setup Completed")] = "integration.installed"
    names[_words("Integration Sync Completed")] = "sync.succeeded"
    for name, etype in (extra or {}).items():
        if etype not in EVENT_TYPES:
            raise ValueError(
                f"[serve.segment_events] {name!r} = {etype!r}: not an event type; use one of "
                + ", ".join(sorted(EVENT_TYPES))
            )
        names[_words(name)] = etype
    return names


@dataclass
class Mapped:
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (position, event)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)


def parse_batch(data: Any) -> list[Any]:
    if not isinstance(data, dict) or not isinstance(data.get("batch"), list):
        raise BadBatch('expected a JSON object {"batch": [...]} (Segment\'s batch format)')
    return data["batch"]


def map_batch(messages: list[Any], names: dict[str, str]) -> Mapped:
    out = Mapped()
    for position, msg in enumerate(messages, start=1):
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "track":
            etype = names.get(_words(str(msg.get("event") or "")))
            if etype is None:
                out.ignored[f"track: {str(msg.get('event'))[:80]}"] += 1
                continue
            out.events.append((position, track_event(msg, etype)))
        elif kind == "group":
            out.accounts.append(group_account(msg))
        else:
            out.ignored[str(kind)[:40] if kind else "not a Segment message"] += 1
    return out


def track_event(msg: dict[str, Any], etype: str) -> dict[str, Any]:
    props = dict(msg.get("properties") or {}) if isinstance(msg.get("properties"), dict) else {}
    context = msg.get("context") if isinstance(msg.get("context"), dict) else {}
    from_props = props.pop("account_id", None)
    account = context.get("groupId") or from_props
    event: dict[str, Any] = {
        "event_id": msg.get("messageId"),
        "type": etype,
        "occurred_at": msg.get("timestamp") or msg.get("originalTimestamp") or msg.get("sentAt"),
        "account_id": account,
        "integration": props.pop("integration", None),
    }
    for name in _EVENT_FIELDS:
        if name in props:
            event[name] = props.pop(name)
    if props:
        event["properties"] = props
    return event


_SEGMENT_TRAITS = {"website": "domain", "createdAt": "created_at", "created_at": "created_at"}


def _snake(name: str) -> str:
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def group_account(msg: dict[str, Any]) -> dict[str, Any]:
    traits = msg.get("traits") if isinstance(msg.get("traits"), dict) else {}
    account: dict[str, Any] = {"account_id": msg.get("groupId")}
    extra: dict[str, Any] = {}
    for name, value in traits.items():
        if name == "id" and value == msg.get("groupId"):
            continue
        target = _SEGMENT_TRAITS.get(name) or _snake(name)
        if target in ACCOUNT_FIELDS and target not in ("account_id", "traits"):
            if target == "domain" and "domain" in account and name == "website":
                continue  # an explicit domain wins over the website
            account[target] = value
        else:
            extra[name] = value
    if extra:
        account["traits"] = extra
    return account
