"""The last `signals impact` analysis of each integration and outcome, kept in the ``kv``
table so the integration pages show it without recomputing (a matched comparison with
1,000 bootstrap resamples takes seconds).

`signals impact` (one integration or ``--all``) and `signals demo` store what they
compute here; ``scoring.views`` reads it. No numpy here: the web imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, select

from integration_signals.store.jsonio import dumps
from integration_signals.store.models import KeyValue
from integration_signals.store.sql import as_utc, upsert


def impact_cache_key(integration: str, outcome: str) -> str:
    """The ``kv`` key under which a full `signals impact` document is cached."""
    return f"impact.{integration}.{outcome}"


def store_impact(engine: Engine, docs: Iterable[Mapping[str, Any]], *, now: datetime) -> int:
    """Keep each analysis document (the `signals impact --json` of one integration)
    under its integration and outcome, replacing the previous one; how many were kept."""
    rows = [
        {
            "key": impact_cache_key(str(doc["integration"]), str(doc["outcome"])),
            # JSON-ready (datetimes as ISO text), as the JSON column stores it.
            "value": orjson.loads(dumps(dict(doc), indent=False)),
            "updated_at": now,
        }
        for doc in docs
        if doc.get("integration") and doc.get("outcome")
    ]
    if not rows:
        return 0
    with engine.begin() as conn:
        upsert(
            conn,
            KeyValue.__table__,
            rows,
            keys=["key"],
            update=lambda ex: {"value": ex.value, "updated_at": ex.updated_at},
        )
    return len(rows)


def cached_impact(conn: Any, integration: str, outcome: str) -> dict[str, Any] | None:
    """The stored document with ``source`` "cached" and when it was stored, or None."""
    kv = KeyValue.__table__
    row = conn.execute(
        select(kv.c.value, kv.c.updated_at).where(
            kv.c.key == impact_cache_key(integration, outcome)
        )
    ).first()
    if row is None or not row.value:
        return None
    return {**row.value, "source": "cached", "cached_at": as_utc(row.updated_at)}
