"""Event and account builders for scoring tests: data goes in through the real ingest."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from integration_signals.config import load_config
from integration_signals.store.accounts import import_account_objects
from integration_signals.store.ingest import Ingestor, read_objects

CONFIG = load_config(None)
NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)


class Feed:
    """Builds events relative to ``end`` (day 0 = the end day, day 1 = the day before)."""

    def __init__(self, end: datetime = NOW) -> None:
        self.end = end
        self.events: list[dict[str, Any]] = []
        self._n = 0

    def at(self, days_ago: int, hour: float = 6.0) -> datetime:
        day = (self.end - timedelta(days=days_ago)).replace(hour=0, minute=0, second=0)
        return day + timedelta(hours=hour)

    def add(self, account: str, integration: str, etype: str, when: datetime, **kw: Any) -> None:
        self._n += 1
        self.events.append(
            {
                "event_id": f"t-{self._n:07d}",
                "type": etype,
                "occurred_at": when.isoformat().replace("+00:00", "Z"),
                "account_id": account,
                "integration": integration,
                "connection_id": f"{account}-{integration}",
                **kw,
            }
        )

    def install(self, account: str, integration: str, days_ago: int, **config: Any) -> None:
        self.add(account, integration, "integration.setup_started", self.at(days_ago, 1))
        self.add(account, integration, "integration.installed", self.at(days_ago, 1.5))
        if config:
            self.add(
                account,
                integration,
                "integration.configured",
                self.at(days_ago, 1.7),
                properties=config,
            )

    def syncs(
        self,
        account: str,
        integration: str,
        days: Iterable[int],
        *,
        per_day: int = 1,
        records: int = 1000,
        api_calls: int = 50,
        trigger: str = "scheduled",
        failures: int = 0,
    ) -> None:
        """``per_day`` successes and ``failures`` failed syncs on each of ``days`` (days ago)."""
        for d in days:
            for k in range(per_day):
                self.add(
                    account,
                    integration,
                    "sync.succeeded",
                    self.at(d, 2 + k * 0.1),
                    records=records,
                    bytes=records * 100,
                    api_calls=api_calls,
                    trigger=trigger,
                )
            for k in range(failures):
                self.add(
                    account,
                    integration,
                    "sync.failed",
                    self.at(d, 3 + k * 0.1),
                    error="TIMEOUT",
                )

    def ingest(self, engine: Engine, *, now: datetime | None = None) -> None:
        Ingestor(engine, CONFIG, now=now or self.end).ingest(
            read_objects(self.events), source="test"
        )
        self.events = []


def account(account_id: str, segment: str = "enterprise", *, tenure_days: int = 400, **kw: Any):
    return {
        "account_id": account_id,
        "name": kw.pop("name", account_id.title()),
        "segment": segment,
        "plan": kw.pop("plan", "enterprise"),
        "mrr": kw.pop("mrr", 8500),
        "created_at": (NOW - timedelta(days=tenure_days)).isoformat(),
        **kw,
    }


def import_accounts(engine: Engine, rows: list[dict[str, Any]], now: datetime = NOW) -> None:
    import_account_objects(engine, rows, source="test", now=now)


ACME_PLAN = [
    ("salesforce", 4, 9_000),
    ("hubspot", 3, 3_000),
    ("snowflake", 4, 20_000),
    ("bigquery", 2, 6_000),
    ("segment", 4, 12_000),
    ("slack", 3, 800),
    ("zendesk", 14, 300),
]


def acme_like(feed: Feed, account_id: str = "acme") -> None:
    """The seeds' Acme: 7 integrations in 5 categories, all automated daily, deep
    configuration, growing; Zendesk failing 15 of 100 syncs this week."""
    rich = {"bidirectional": True, "custom_fields": 12, "filters": 2, "objects": 4}
    for integration, per_day, records in ACME_PLAN:
        feed.install(account_id, integration, 120, **rich)
        for d in range(119, -1, -1):
            grown = int(records * (1.3 if d < 30 else 1.0))
            if integration == "zendesk" and d < 7:
                continue
            feed.syncs(account_id, integration, [d], per_day=per_day, records=grown, api_calls=80)
    # Zendesk this week: 100 attempts, 15 failed, spread over the 7 days.
    for i in range(100):
        d = 6 - i // 15 if i < 90 else 0
        failed = i % 7 == 0  # 15 of the 100
        if failed:
            feed.add(
                account_id,
                "zendesk",
                "sync.failed",
                feed.at(d, 4 + (i % 15) * 0.5),
                error="RATE_LIMITED",
            )
        else:
            feed.add(
                account_id,
                "zendesk",
                "sync.succeeded",
                feed.at(d, 4 + (i % 15) * 0.5),
                records=390,
                bytes=39000,
                api_calls=80,
                trigger="scheduled",
            )
