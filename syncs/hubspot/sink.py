"""Writes our values to HubSpot companies: batch update, 100 inputs a call, a result for
every record; finds companies by domain; provisions the property group and properties."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from integration_signals.config import Config, Settings
from integration_signals.store.accounts import normalize_domain
from integration_signals.syncs.contract import (
    RecordChange,
    RecordResult,
    chunks,
    write_concurrently,
    write_isolating,
)
from integration_signals.syncs.exceptions import FatalSyncError, MissingFields
from integration_signals.syncs.hubspot import mapping
from integration_signals.syncs.hubspot.client import HubSpotClient
from integration_signals.syncs.hubspot.settings import sync_config
from integration_signals.syncs.hubspot.shapes import batch_results
from integration_signals.syncs.matching import Found


class HubSpotSink:
    """The HubSpot destination's sink (see ``syncs.contract.Sink``)."""

    name = "hubspot"

    def __init__(self, config: Config, settings: Settings, client: HubSpotClient | None = None):
        self.config = config
        self.cfg = sync_config(config)
        self.client = client or HubSpotClient(settings, config.syncs)
        self.write_calls = 0
        self._lock = threading.Lock()
        self._fields: list[str] = []
        self.checkpoint = None  # HubSpot writes are synchronous: nothing to resume

    @property
    def api_calls(self) -> int:
        return self.client.api_calls

    def usage(self) -> dict[str, object]:
        return {**self.client.usage, "rate_limited_429": self.client.rate_limited}

    def check_fields(self, fields: Iterable[str]) -> None:
        existing = self.client.property_names()
        missing = sorted(set(fields) - existing)
        if missing:
            raise MissingFields(
                f"HubSpot companies lack the properties {', '.join(missing)};"
                " run `signals provision hubspot`",
                fields=missing,
                destination=self.name,
            )

    def prepare(self, fields: Iterable[str]) -> None:
        """No request up front: every request counts against the rate limit, and HubSpot
        refuses a whole batch that names a missing property (nothing is written), so the
        first write is the check. When it is refused, ``_write_once`` lists every
        missing property with one more request."""
        self._fields = list(fields)

    def resume(self, token: str) -> list[tuple[str, dict[str, str]]]:
        return []

    def find_by_domain(self, domains: Sequence[str]) -> dict[str, list[str]]:
        wanted = set(domains)
        found: dict[str, set[str]] = {}
        ordered = sorted(wanted)
        size = self.cfg.domain_search_chunk
        problems: dict[str, str] = {}
        for start in range(0, len(ordered), size):
            part = ordered[start : start + size]
            hits, odd = self.client.search_domains(part)
            for record_id, raw in hits:
                domain = normalize_domain(raw) if isinstance(raw, str) else None
                if domain in wanted:
                    found.setdefault(domain, set()).add(record_id)
            for raw, reason in odd:
                if raw is None:  # which domains it concerns is unknown: none is trusted
                    for domain in part:
                        problems.setdefault(domain, reason)
                elif (domain := normalize_domain(raw) if isinstance(raw, str) else None) in wanted:
                    problems.setdefault(str(domain), reason)
        return Found({d: sorted(ids) for d, ids in found.items()}, problems)

    def _write_once(self, batch: Sequence[RecordChange]) -> list[RecordResult]:
        with self._lock:
            self.write_calls += 1
        try:
            response = self.client.batch_update(
                [(c.record_id, mapping.to_properties(c.new_values)) for c in batch]
            )
        except MissingFields as exc:
            try:
                self.check_fields(self._fields)
            except MissingFields as listed:
                exc = MissingFields(
                    listed.message,
                    fields=sorted(set(listed.fields) | set(exc.fields)),
                    destination=self.name,
                )
            raise exc from None
        return batch_results(response, batch)

    def write_batches(self, changes: Sequence[RecordChange]) -> Iterator[list[RecordResult]]:
        yield from write_concurrently(
            chunks(changes, self.cfg.batch_size),
            lambda batch: write_isolating(batch, self._write_once),
            workers=self.cfg.concurrency,
        )


@dataclass
class ProvisionReport:
    group: str
    group_created: bool = False
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    api_calls: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "destination": "hubspot",
            "group": self.group,
            "group_created": self.group_created,
            "created": self.created,
            "existing": self.existing,
            "api_calls": self.api_calls,
        }


def provision(config: Config, settings: Settings) -> ProvisionReport:
    """Create the property group and every mapped property that is missing (idempotent:
    a second run creates nothing)."""
    cfg = sync_config(config)
    client = HubSpotClient(settings, config.syncs)
    report = ProvisionReport(group=cfg.property_group)
    if not client.group_exists(cfg.property_group):
        try:
            client.create_group(cfg.property_group, cfg.property_group_label)
            report.group_created = True
        except FatalSyncError as exc:
            if exc.status != 409:
                raise
    existing = client.property_names()
    for key, name in mapping.field_map(config).items():
        if name in existing:
            report.existing.append(name)
            continue
        try:
            client.create_property(mapping.property_definition(key, name, cfg.property_group))
            report.created.append(name)
        except FatalSyncError as exc:
            if exc.status != 409:
                raise
            report.existing.append(name)
    report.api_calls = client.api_calls
    return report
