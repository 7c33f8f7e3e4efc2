"""Retention (Kaplan-Meier) and time-to-value, in whole UTC days.

Retention: "still active d days after activation". A connection's lifetime ends on
the day of its last successful sync when no successful sync follows within its
active window before the as-of day, or on the day it was uninstalled; a connection
still active at the as-of day is censored there.

Time-to-value: install -> first successful sync; installs not yet activated are
censored at the as-of day, not dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, select

from integration_signals.config import Config
from integration_signals.scoring.facts import ConnectionFacts, load_facts_conn
from integration_signals.store.models import DailyUsage

RETAINED_AT = (7, 30, 60, 90)


@dataclass(frozen=True, slots=True)
class Lifetime:
    connection_id: str
    integration: str
    segment: str | None
    activated: date
    installed: date
    duration: int  # whole days from activation to the end (or to the as-of day)
    ended: bool  # False = censored at the as-of day


@dataclass(frozen=True, slots=True)
class KMPoint:
    day: int
    retained: float
    at_risk: int
    events: int
    censored: int


def kaplan_meier(durations: Sequence[float], ended: Sequence[bool]) -> list[KMPoint]:
    """Product-limit estimate at every distinct duration (and day 0), like lifelines'
    ``survival_function_`` timeline."""
    if not durations:
        return []
    events: dict[float, int] = defaultdict(int)
    cens: dict[float, int] = defaultdict(int)
    for t, e in zip(durations, ended, strict=True):
        (events if e else cens)[t] += 1
    n = len(durations)
    at_risk = n
    survival = 1.0
    out: list[KMPoint] = []
    times = sorted(set(events) | set(cens) | {0})
    for t in times:
        d, c = events.get(t, 0), cens.get(t, 0)
        if at_risk > 0 and d:
            survival *= 1.0 - d / at_risk
        out.append(KMPoint(int(t), survival, at_risk, d, c))
        at_risk -= d + c
    return out


def survival_at(curve: Sequence[KMPoint], day: float) -> float | None:
    """S(day): the estimate after every event at or before ``day``."""
    if not curve:
        return None
    value = 1.0
    for point in curve:
        if point.day > day:
            break
        value = point.retained
    return value


def quantile_day(curve: Sequence[KMPoint], share_left: float) -> int | None:
    """The first day the estimate falls to ``share_left`` or below (None if never)."""
    for point in curve:
        if point.retained <= share_left + 1e-12:
            return point.day
    return None


def lifetime_of(
    f: ConnectionFacts, success_days: Sequence[date], as_of: date, segment: str | None
) -> Lifetime | None:
    if f.activated_at is None:
        return None
    activated = f.activated_at.date()
    window = f.integration.window_days
    end: date | None = None
    days = [d for d in success_days if d >= activated] or [activated]
    prev = days[0]
    for d in days[1:]:
        if (d - prev).days > window:  # the window after prev elapsed without a success
            end = prev
            break
        prev = d
    if end is None and (as_of - prev).days >= window:
        end = prev
    if f.state == "uninstalled" and f.uninstalled_at is not None:
        gone = f.uninstalled_at.date()
        if end is None or gone < end:
            end = max(gone, activated)
    installed = (f.installed_at or f.activated_at).date()
    if end is None:
        return Lifetime(
            f.connection_id,
            f.integration.key,
            segment,
            activated,
            installed,
            (as_of - activated).days,
            False,
        )
    return Lifetime(
        f.connection_id,
        f.integration.key,
        segment,
        activated,
        installed,
        (end - activated).days,
        True,
    )


def load_lifetimes(
    engine: Engine,
    config: Config,
    *,
    as_of: date,
    integration: str | None = None,
    segment: str | None = None,
    since: date | None = None,
) -> tuple[list[Lifetime], list[ConnectionFacts], dict[str, str | None]]:
    """Lifetimes of activated connections (and every connection's facts) up to as_of."""
    d = DailyUsage.__table__
    with engine.connect() as conn:
        accounts = load_facts_conn(conn, config, as_of=as_of)
        stmt = select(d.c.connection_id, d.c.day).where(d.c.successes > 0, d.c.day <= as_of)
        if integration is not None:
            stmt = stmt.where(d.c.integration == integration)
        days: dict[str, list[date]] = defaultdict(list)
        for cid, day in conn.execute(stmt.order_by(d.c.connection_id, d.c.day)):
            days[cid].append(day if isinstance(day, date) else date.fromisoformat(str(day)))
    seg_of: dict[str, str | None] = {}
    conns: list[ConnectionFacts] = []
    for account in accounts.values():
        if segment is not None and account.segment != segment:
            continue
        for f in account.connections:
            if integration is not None and f.integration.key != integration:
                continue
            start = f.installed_at or f.setup_started_at or f.activated_at
            if since is not None and (start is None or start.date() < since):
                continue
            seg_of[f.connection_id] = account.segment
            conns.append(f)
    lifetimes = []
    for f in conns:
        life = lifetime_of(f, days.get(f.connection_id, []), as_of, seg_of[f.connection_id])
        if life is not None:
            lifetimes.append(life)
    return lifetimes, conns, seg_of


def curve_json(curve: Sequence[KMPoint]) -> list[dict[str, Any]]:
    return [
        {
            "day": p.day,
            "retained": p.retained,
            "at_risk": p.at_risk,
            "events": p.events,
            "censored": p.censored,
        }
        for p in curve
    ]


def retained_at(curve: Sequence[KMPoint]) -> dict[str, float | None]:
    return {str(t): survival_at(curve, t) for t in RETAINED_AT}


def cohort_of(day: date, cohort: str) -> str:
    if cohort == "week":
        monday = day - timedelta(days=day.weekday())
        return monday.isoformat()
    return day.strftime("%Y-%m")


def retention_report(
    lifetimes: Iterable[Lifetime], *, integration: str, cohort: str | None = None
) -> dict[str, Any]:
    lives = list(lifetimes)
    curve = kaplan_meier([life.duration for life in lives], [life.ended for life in lives])
    out: dict[str, Any] = {
        "integration": integration,
        "connections": len(lives),
        "ended": sum(1 for life in lives if life.ended),
        "censored": sum(1 for life in lives if not life.ended),
        "curve": curve_json(curve),
        "retained_at": retained_at(curve),
        "median_days": quantile_day(curve, 0.5),
    }
    if cohort:
        groups: dict[str, list[Lifetime]] = defaultdict(list)
        for life in lives:
            groups[cohort_of(life.installed, cohort)].append(life)
        cohorts = []
        for key in sorted(groups):
            group = groups[key]
            c = kaplan_meier([g.duration for g in group], [g.ended for g in group])
            cohorts.append(
                {
                    "cohort": key,
                    "connections": len(group),
                    "curve": curve_json(c),
                    "retained_at": retained_at(c),
                }
            )
        out["cohort_by"] = cohort
        out["cohorts"] = cohorts
    return out


def ttv_rows(conns: Iterable[ConnectionFacts], as_of: date) -> list[dict[str, Any]]:
    """Per integration: installs, activated, median and p90 days install -> first sync
    (Kaplan-Meier, not-yet-activated installs censored)."""
    groups: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    names: dict[str, str] = {}
    for f in conns:
        if f.installed_at is None:
            continue
        names[f.integration.key] = f.integration.name
        installed = f.installed_at.date()
        if f.activated_at is not None:
            groups[f.integration.key].append(
                (max(0, (f.activated_at.date() - installed).days), True)
            )
        else:
            groups[f.integration.key].append((max(0, (as_of - installed).days), False))
    rows = []
    for key in sorted(groups):
        items = groups[key]
        curve = kaplan_meier([t for t, _ in items], [e for _, e in items])
        rows.append(
            {
                "integration": key,
                "name": names[key],
                "installs": len(items),
                "activated": sum(1 for _, e in items if e),
                "censored": sum(1 for _, e in items if not e),
                "median_days": quantile_day(curve, 0.5),
                "p90_days": quantile_day(curve, 0.1),
            }
        )
    return rows
