"""Synthetic worlds with a known, planted effect, loaded through the real account import
and event ingest: adoption of one integration is confounded by size and plan, and the
outcome depends on size and plan plus whatever effect the test plants."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from integration_signals.config import load_config
from integration_signals.store.accounts import import_account_objects
from integration_signals.store.ingest import Ingestor, read_objects

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 20, tzinfo=UTC)
CONFIG = load_config(None)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass
class World:
    accounts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    adopters: set[str] = field(default_factory=set)
    origin: datetime = AS_OF  # day 0 of ``syncs`` and ``install``

    def syncs(self, account: str, integration: str, days: list[int], *, ok: bool = True) -> None:
        """Sync events on the given days relative to ``origin`` (negative = before)."""
        cid = f"{account}-{integration}"
        for day in days:
            self.events.append(
                {
                    "event_id": f"{cid}-{'s' if ok else 'f'}{day}-{len(self.events)}",
                    "type": "sync.succeeded" if ok else "sync.failed",
                    "occurred_at": iso(self.origin + timedelta(days=day, hours=3)),
                    "account_id": account,
                    "integration": integration,
                    "connection_id": cid,
                    "records": 500,
                    "api_calls": 20,
                    "trigger": "scheduled",
                }
            )

    def install(self, account: str, integration: str, day: int) -> None:
        cid = f"{account}-{integration}"
        self.events.append(
            {
                "event_id": f"{cid}-install{day}",
                "type": "integration.installed",
                "occurred_at": iso(self.origin + timedelta(days=day)),
                "account_id": account,
                "integration": integration,
                "connection_id": cid,
            }
        )

    def load(self, engine: Engine) -> None:
        imported = import_account_objects(engine, self.accounts, source="synthetic", now=NOW)
        assert imported.quarantined == 0, imported.problems[:3]
        report = Ingestor(engine, CONFIG, now=NOW).ingest(
            read_objects(self.events), source="synthetic"
        )
        assert report.quarantined == 0


def confounded_world(
    *, n: int = 1200, effect: float = -0.10, seed: int = 1, expansion_effect: float = 0.0
) -> World:
    """Bigger accounts and the pro plan adopt Snowflake far more often and churn far less
    anyway; adopting changes churn by ``effect`` (a probability) and expansion MRR by
    ``expansion_effect`` dollars. Zendesk is adopted at random and changes nothing."""
    rng = random.Random(seed)
    w = World()
    for i in range(n):
        aid = f"a{i:05d}"
        segment = rng.choices(("smb", "mid_market", "enterprise"), (0.5, 0.3, 0.2))[0]
        plan = rng.choice(("starter", "pro"))
        employees = {"smb": 50, "mid_market": 600, "enterprise": 5000}[segment] * math.exp(
            rng.gauss(0, 0.5)
        )
        size = math.log(employees)  # 2.5 .. 9.5
        mrr = round(employees * rng.uniform(2, 4), 2)
        tenure = rng.randint(100, 1500)
        logit = -5.0 + 0.7 * size + (1.0 if plan == "pro" else 0.0)
        adopts = rng.random() < 1 / (1 + math.exp(-logit))
        base = 0.50 - 0.04 * size - (0.10 if plan == "pro" else 0.0)
        churn_p = min(0.95, max(0.02, base + (effect if adopts else 0.0)))
        churned = rng.random() < churn_p
        row: dict[str, Any] = {
            "account_id": aid,
            "name": f"Account {i}",
            "segment": segment,
            "plan": plan,
            "industry": rng.choice(("retail", "software")),
            "employees": int(employees),
            "mrr": mrr,
            "created_at": iso(AS_OF - timedelta(days=tenure)),
            "renewed": not churned,
            "expansion_mrr": round(
                {"smb": 60, "mid_market": 120, "enterprise": 240}[segment]
                + (30 if plan == "pro" else 0)
                + rng.uniform(-40, 40)
                + (expansion_effect if adopts else 0),
                2,
            ),
            "nps": rng.randint(0, 10),
        }
        if churned:
            row["churned_at"] = iso(AS_OF + timedelta(days=rng.randint(1, 150)))
        w.accounts.append(row)
        if adopts:
            w.adopters.add(aid)
            w.install(aid, "snowflake", -60)
            w.syncs(aid, "snowflake", sorted(rng.sample(range(-59, 0), 3)))
        elif rng.random() < 0.2:
            # Installs alone, two days of use, or use that starts after AS_OF: not adoption.
            kind = rng.choice(("install", "two_days", "late"))
            w.install(aid, "snowflake", -30 if kind != "late" else 5)
            if kind == "two_days":
                w.syncs(aid, "snowflake", [-20, -10])
            elif kind == "late":
                w.syncs(aid, "snowflake", [6, 7, 8, 9])
        if rng.random() < 0.3:
            w.syncs(aid, "zendesk", [-40, -30, -20, -10])
    return w
