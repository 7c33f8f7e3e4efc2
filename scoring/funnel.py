"""The adoption funnel per integration: installed -> activated -> active now, the
current broken / idle / uninstalled counts (never lumped), and retention at 30 and 90
days after activation with how many connections were old enough to count."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from integration_signals.scoring.facts import ConnectionFacts
from integration_signals.scoring.retention import Lifetime

STATES = ("active", "broken", "idle", "uninstalled", "installed")


def largest_drop(row: dict[str, Any]) -> dict[str, Any] | None:
    """The stage conversion that loses the largest share of connections."""
    stages = [
        ("installed", "activated", row["installed"], row["activated"]),
        ("activated", "active", row["activated"], row["active"]),
        ("activated 30+ days ago", "retained 30 days", row["eligible_30"], row["retained_30"]),
        ("activated 90+ days ago", "retained 90 days", row["eligible_90"], row["retained_90"]),
    ]
    best = None
    for start, end, before, after in stages:
        if not before:
            continue
        lost = before - after
        share = lost / before
        if best is None or share > best["share"]:
            best = {"from": start, "to": end, "lost": lost, "share": share}
    return best


def funnel_rows(
    conns: Iterable[ConnectionFacts],
    lifetimes: Iterable[Lifetime],
    *,
    names: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    by_integration: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "installed": 0,
            "activated": 0,
            "active": 0,
            "broken": 0,
            "idle": 0,
            "uninstalled": 0,
            "retained_30": 0,
            "eligible_30": 0,
            "retained_90": 0,
            "eligible_90": 0,
        }
    )
    for f in conns:
        row = by_integration[f.integration.key]
        row["name"] = f.integration.name
        if f.installed_at is None and f.activated_at is None:
            continue  # setup started or failed: not installed
        row["installed"] += 1
        if f.activated_at is not None:
            row["activated"] += 1
        if f.state in ("active", "broken", "idle", "uninstalled"):
            row[f.state] += 1
    for life in lifetimes:
        row = by_integration[life.integration]
        for days in (30, 90):
            # Eligible when the outcome is known: it lived `days` days, or ended sooner.
            # A connection censored before `days` (activated recently) does not count.
            if life.duration >= days:
                row[f"eligible_{days}"] += 1
                row[f"retained_{days}"] += 1
            elif life.ended:
                row[f"eligible_{days}"] += 1
    out = []
    for key in sorted(by_integration):
        row = by_integration[key]
        if not row["installed"]:
            continue
        data = {"integration": key, "name": row.pop("name", key), **row}
        data["activation_rate"] = data["activated"] / data["installed"]
        data["active_rate"] = data["active"] / data["activated"] if data["activated"] else None
        data["retention_30"] = (
            data["retained_30"] / data["eligible_30"] if data["eligible_30"] else None
        )
        data["retention_90"] = (
            data["retained_90"] / data["eligible_90"] if data["eligible_90"] else None
        )
        data["largest_drop"] = largest_drop(data)
        out.append(data)
    return out
