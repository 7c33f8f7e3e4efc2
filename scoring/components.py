"""The six components of the health score, as pure functions of an account's facts.

Each maps its measure monotonically onto 0-100 through anchor points: at least 80 at
the healthy threshold, at most 40 at the at-risk threshold, clamped to 0-100. Each
returns the measured inputs and a one-line reason naming the integration that drives
it ("Zendesk: 85% sync success (15 of 100 failed this week)").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from integration_signals.config import (
    ActivationThresholds,
    Bands,
    FrequencyThresholds,
    GrowthThresholds,
    HealthThresholds,
    ScoringConfig,
    SophisticationThresholds,
    VolumeThresholds,
)
from integration_signals.scoring.facts import AccountFacts, ConnectionFacts

Point = tuple[float, float]


def interpolate(x: float, points: Sequence[Point]) -> float:
    """Piecewise-linear through ``points`` (x increasing), flat beyond the ends."""
    x0, y0 = points[0]
    if x <= x0:
        return y0
    for x1, y1 in points:
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        x0, y0 = x1, y1
    return y0


_ANCHORS: dict[tuple[Point, ...], tuple[Point, ...]] = {}


def _increasing(points: Sequence[Point]) -> tuple[Point, ...]:
    """Keep anchors whose x strictly increases (a degenerate config collapses two)."""
    key = tuple(points)
    hit = _ANCHORS.get(key)
    if hit is None:
        out: list[Point] = []
        for x, y in key:
            if out and x <= out[-1][0]:
                continue
            out.append((x, y))
        hit = _ANCHORS[key] = tuple(out)
    return hit


def clamp(value: float) -> float:
    return max(0.0, min(100.0, value))


def half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


@dataclass(frozen=True)
class Rules:
    """The scoring rules that apply to one segment (defaults + segment overrides)."""

    segment: str
    weights: dict[str, float]
    bands: Bands
    activation: ActivationThresholds
    volume: VolumeThresholds
    health: HealthThresholds
    frequency: FrequencyThresholds
    sophistication: SophisticationThresholds
    growth: GrowthThresholds
    cadence_days: dict[str, float]
    onboarding_days: int


_RULES: dict[tuple[int, str | None], tuple[ScoringConfig, Rules]] = {}


def rules_for(config: ScoringConfig, segment: str | None) -> Rules:
    """The rules of ``segment`` (memoised per config object)."""
    hit = _RULES.get((id(config), segment))
    if hit is not None and hit[0] is config:
        return hit[1]
    rules = _rules_for(config, segment)
    _RULES[(id(config), segment)] = (config, rules)
    return rules


def _rules_for(config: ScoringConfig, segment: str | None) -> Rules:
    seg = segment if segment in config.activation else config.default_segment
    over = config.segments.get(seg)

    def pick(name: str) -> Any:
        value = getattr(over, name, None) if over is not None else None
        return value if value is not None else getattr(config, name)

    return Rules(
        segment=seg,
        weights=pick("weights"),
        bands=pick("bands"),
        activation=config.activation[seg],
        volume=pick("volume"),
        health=pick("health"),
        frequency=pick("frequency"),
        sophistication=pick("sophistication"),
        growth=pick("growth"),
        cadence_days=config.cadence_days,
        onboarding_days=config.onboarding_days,
    )


@dataclass
class Component:
    score: int
    reason: str
    inputs: dict[str, Any] = field(default_factory=dict)


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _num(x: float) -> str:
    if x >= 10_000_000:
        return f"{x / 1_000_000:.0f}M"
    if x >= 1_000_000:
        return f"{x / 1_000_000:.1f}M"
    if x >= 10_000:
        return f"{x / 1000:.0f}K"
    if x >= 1000:
        return f"{x / 1000:.1f}K"
    return f"{x:.0f}"


# ---------------------------------------------------------------- activation depth


def activation_score(active: int, categories: int, t: ActivationThresholds) -> float:
    count = _increasing(
        [(0, 0), (t.at_risk_active, 40), (t.healthy_active, 80), (t.top_active, 100)]
    )
    hc = t.healthy_categories
    cats = _increasing([(0, 0), (hc - 1, 40), (hc, 80), (hc + 2, 100)])
    return min(interpolate(active, count), interpolate(categories, cats))


def activation_depth(facts: AccountFacts, rules: Rules) -> Component:
    conns = facts.connections
    active = [c for c in conns if c.state == "active"]
    categories = sorted({c.integration.category for c in active})
    started = [c for c in conns if c.setup_started_at is not None or c.installed_at is not None]
    completed = [c for c in started if c.installed_at is not None]
    completion = len(completed) / len(started) if started else None
    t = rules.activation
    score = activation_score(len(active), len(categories), t)
    reason = (
        f"{len(active)} active integration{'s' if len(active) != 1 else ''} in "
        f"{len(categories)} categor{'ies' if len(categories) != 1 else 'y'} "
        f"({rules.segment.replace('_', '-')} healthy: {t.healthy_active}+ from "
        f"{t.healthy_categories}+)"
    )
    problems = [
        f"{c.name} {c.state}"
        for c in sorted(conns, key=lambda c: (c.state != "broken", c.name))
        if c.state in ("broken", "idle")
    ]
    never = [c.name for c in conns if c.state == "installed"]
    if problems:
        reason += "; " + ", ".join(problems[:3])
    elif never:
        reason += f"; {never[0]} installed but never synced"
    return Component(
        half_up(clamp(score)),
        reason,
        {
            "active_integrations": len(active),
            "categories": len(categories),
            "category_names": categories,
            "setup_completion": completion,
            "healthy_active": t.healthy_active,
            "healthy_categories": t.healthy_categories,
        },
    )


# ---------------------------------------------------------------- usage volume


def _log_points(at_risk: float, healthy: float) -> list[Point]:
    return _increasing(
        [
            (0.0, 0),
            (math.log10(1 + at_risk), 40),
            (math.log10(1 + healthy), 80),
            (math.log10(1 + healthy * 10), 100),
        ]
    )


def volume_score(calls_per_day: float, records_per_week: float, t: VolumeThresholds) -> float:
    calls = interpolate(
        math.log10(1 + calls_per_day), _log_points(t.at_risk_calls_per_day, t.healthy_calls_per_day)
    )
    records = interpolate(
        math.log10(1 + records_per_week),
        _log_points(t.at_risk_records_per_week, t.healthy_records_per_week),
    )
    return max(calls, records)


def usage_volume(facts: AccountFacts, rules: Rules) -> Component:
    conns = facts.connections
    calls_per_day = sum(c.api_calls_7 for c in conns) / 7
    records_week = sum(c.records_7 for c in conns)
    bytes_week = sum(c.bytes_7 for c in conns)
    limit = facts.api_limit_daily
    limit_share = calls_per_day / limit if limit else None
    score = volume_score(calls_per_day, records_week, rules.volume)
    if records_week == 0 and calls_per_day == 0:
        reason = "no syncs or API calls in the last 7 days"
    else:
        top = max(conns, key=lambda c: (c.records_7, c.api_calls_7, c.name))
        share = top.records_7 / records_week if records_week else 0
        reason = (
            f"{_num(records_week)} records/week, {_num(calls_per_day)} API calls/day; "
            f"{top.name} carries {_pct(share)} of records"
        )
        if limit_share is not None:
            reason += f"; API calls at {_pct(limit_share)} of plan limit"
    return Component(
        half_up(clamp(score)),
        reason,
        {
            "api_calls_per_day": round(calls_per_day, 2),
            "records_per_week": records_week,
            "bytes_per_week": bytes_week,
            "api_limit_daily": limit,
            "api_limit_share": limit_share,
        },
    )


# ---------------------------------------------------------------- health status


def connection_health(
    success_rate: float, errors_week: float, days_overdue: float, t: HealthThresholds
) -> tuple[float, str]:
    """Score of one connection and which measure binds (rate | errors | recency)."""
    rate = interpolate(
        success_rate,
        _increasing([(0, 0), (t.at_risk_success_rate, 40), (t.healthy_success_rate, 80), (1, 100)]),
    )
    e = t.at_risk_errors_per_week
    errors = interpolate(
        -errors_week,
        _increasing([(-4 * e, 0), (-e, 40), (-t.healthy_errors_per_week, 80), (0, 100)]),
    )
    d = t.at_risk_days_since_success
    recency = interpolate(-days_overdue, [(-(d + 4), 0), (-d, 40), (-d * 2 / 3, 80), (0, 100)])
    return min((rate, "rate"), (errors, "errors"), (recency, "recency"))


def _days_overdue(c: ConnectionFacts, as_of: date, rules: Rules) -> float:
    if c.last_success_day is None:
        return math.inf
    gap = (as_of - c.last_success_day).days
    cadence = rules.cadence_days.get(c.integration.rhythm, 1)
    return max(0.0, gap - cadence + 1)


def _attempts(c: ConnectionFacts) -> tuple[int, int, str]:
    """(failures, attempts, period) over 7 days, or 30 when nothing ran this week."""
    if c.successes_7 + c.failures_7 > 0:
        return c.failures_7, c.successes_7 + c.failures_7, "this week"
    return c.failures_30, c.successes_30 + c.failures_30, "in 30 days"


def health_status(facts: AccountFacts, rules: Rules) -> Component:
    in_use = [c for c in facts.connections if c.in_use]
    if not in_use:
        return Component(0, "no connection synced inside its active window", {"connections": 0})
    rows = []
    for c in in_use:
        failures, attempts, period = _attempts(c)
        rate = (attempts - failures) / attempts if attempts else 0.0
        overdue = _days_overdue(c, facts.as_of, rules)
        auth = c.auth_expired_at is not None and (
            c.auth_restored_at is None or c.auth_restored_at < c.auth_expired_at
        )
        score, binding = connection_health(rate, c.failures_7, min(overdue, 1e6), rules.health)
        if auth:
            score, binding = 0.0, "auth"
        rows.append((score, binding, c, rate, failures, attempts, period, overdue))
    scores = [r[0] for r in rows]
    total = 0.5 * sum(scores) / len(scores) + 0.5 * min(scores)
    worst = min(rows, key=lambda r: (r[0], r[2].name))
    score, binding, c, rate, failures, attempts, period, overdue = worst
    gap = (facts.as_of - c.last_success_day).days if c.last_success_day else None
    if binding == "auth":
        reason = f"{c.name}: credentials expired, {failures} of {attempts} syncs failed {period}"
    elif score >= 80:
        low = min(r[3] for r in rows)
        reason = f"all {len(rows)} connections healthy: {_pct(low)}+ sync success {period}"
    elif binding == "recency" and gap is not None:
        reason = f"{c.name}: no good sync for {gap} days"
    else:
        reason = f"{c.name}: {_pct(rate)} sync success ({failures} of {attempts} failed {period})"
    return Component(
        half_up(clamp(total)),
        reason,
        {
            "connections": len(rows),
            "worst": c.integration.key,
            "worst_success_rate": rate,
            "worst_failures": failures,
            "worst_attempts": attempts,
            "worst_days_since_success": gap,
            "per_connection": {r[2].integration.key: half_up(r[0]) for r in rows},
        },
    )


# ---------------------------------------------------------------- frequency & consistency


def frequency_score(gap: float, automated_share: float, t: FrequencyThresholds) -> float:
    """``gap``: mean days between uses in units of the integration's cadence."""
    gap_points = _increasing(
        ([(-max(30.0, 3 * t.at_risk_gap_days), 0), (-t.at_risk_gap_days, 40)])
        + [(-t.healthy_gap_days, 80)]
        + ([(-1.0, 100)] if t.healthy_gap_days > 1 else [])
    )
    gap_score = interpolate(-gap, gap_points)
    auto = interpolate(
        automated_share, _increasing([(0, 40), (t.healthy_automated_share, 80), (1, 100)])
    )
    return min(gap_score, auto)


def frequency(facts: AccountFacts, rules: Rules) -> Component:
    as_of = facts.as_of
    used = [c for c in facts.connections if c.use_days_30 > 0 and c.state != "uninstalled"]
    if not used:
        return Component(0, "no integration used in the last 30 days", {"connections": 0})
    rows = []
    for c in used:
        span = 30
        if c.activated_at is not None:
            span = max(1, min(30, (as_of - c.activated_at.date()).days + 1))
        cadence = rules.cadence_days.get(c.integration.rhythm, 1)
        gap = span / c.use_days_30 / cadence
        runs = c.automated_30 + c.manual_30
        share = c.automated_30 / runs if runs else 0.0
        rows.append((frequency_score(gap, share, rules.frequency), c, gap, share, span))
    total = sum(r[0] for r in rows) / len(rows)
    worst = min(rows, key=lambda r: (r[0], r[1].name))
    score, c, gap, share, span = worst
    automated = sum(1 for r in rows if r[3] >= rules.frequency.healthy_automated_share)
    if score >= 80:
        reason = (
            f"{len(rows)} integration{'s' if len(rows) != 1 else ''} on cadence, "
            f"{automated} automated"
        )
    elif share == 0:
        reason = f"{c.name}: manual syncs only"
    elif (
        share < rules.frequency.healthy_automated_share and gap <= rules.frequency.healthy_gap_days
    ):
        reason = f"{c.name}: only {_pct(share)} of syncs automated"
    else:
        reason = f"{c.name}: used on {c.use_days_30} of the last {span} days"
    return Component(
        half_up(clamp(total)),
        reason,
        {
            "connections": len(rows),
            "automated_connections": automated,
            "worst": c.integration.key,
            "worst_gap_cadences": round(gap, 3),
            "worst_automated_share": share,
        },
    )


# ---------------------------------------------------------------- sophistication

FEATURES = ("bidirectional", "custom_fields", "filters", "transformations", "objects")


def _n(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | dict):
        return float(len(value))
    return 0.0


def features_of(config: dict[str, Any]) -> list[str]:
    """Advanced features a connection's configuration uses."""
    out = []
    if _n(config.get("bidirectional")) > 0:
        out.append("bi-directional")
    if _n(config.get("custom_fields")) > 0:
        out.append(f"{_n(config.get('custom_fields')):.0f} custom fields")
    if _n(config.get("filters")) > 0:
        out.append("filters")
    if _n(config.get("transformations")) > 0:
        out.append("transformations")
    if _n(config.get("objects")) >= 3:
        out.append(f"{_n(config.get('objects')):.0f} objects")
    return out


def feature_count(c: ConnectionFacts) -> int:
    """How many advanced features (see ``features_of``), computed once per connection."""
    if c.features is None:
        cfg = c.config
        c.features = (
            (_n(cfg.get("bidirectional")) > 0)
            + (_n(cfg.get("custom_fields")) > 0)
            + (_n(cfg.get("filters")) > 0)
            + (_n(cfg.get("transformations")) > 0)
            + (_n(cfg.get("objects")) >= 3)
        )
    return c.features


def sophistication_score(best: float, mean: float, t: SophisticationThresholds) -> float:
    measure = 0.5 * best + 0.5 * mean
    return interpolate(measure, _increasing([(0, 20), (t.healthy_features, 80), (5, 100)]))


def sophistication(facts: AccountFacts, rules: Rules) -> Component:
    conns = [c for c in facts.connections if c.activated and c.state != "uninstalled"]
    if not conns:
        return Component(0, "no activated integration to configure", {"connections": 0})
    feats = [(feature_count(c), c) for c in conns]
    best_n, best = max(feats, key=lambda f: (f[0], f[1].name))
    mean = sum(f[0] for f in feats) / len(feats)
    advanced = sum(1 for f in feats if f[0] > 0)
    score = sophistication_score(best_n, mean, rules.sophistication)
    if best_n == 0:
        reason = f"basic configuration only on all {len(conns)} integrations"
    else:
        reason = (
            f"{best.name}: {', '.join(features_of(best.config))}; {advanced} of {len(conns)}"
            " integrations use advanced features"
        )
    return Component(
        half_up(clamp(score)),
        reason,
        {
            "connections": len(conns),
            "advanced_connections": advanced,
            "best": best.integration.key,
            "best_features": best_n,
            "mean_features": round(mean, 3),
        },
    )


# ---------------------------------------------------------------- growth trajectory


def growth_score(growth: float, new_integrations: int, t: GrowthThresholds) -> float:
    points = _increasing(
        [
            (min(-0.5, t.at_risk_growth - 0.45), 0),
            (t.at_risk_growth, 40),
            (t.healthy_growth, 80),
            (t.healthy_growth + 0.3, 100),
        ]
    )
    return min(100.0, interpolate(growth, points) + t.points_per_new_integration * new_integrations)


def growth(facts: AccountFacts, rules: Rules) -> Component:
    conns = facts.connections
    now = sum(c.records_30 for c in conns)
    before = sum(c.records_prev_30 for c in conns)
    if before > 0:
        g = (now - before) / before
    else:
        g = 1.0 if now > 0 else 0.0
    g = min(g, 10.0)
    month_ago = facts.as_of - timedelta(days=29)
    new = sorted(
        (c for c in conns if c.activated_at is not None and c.activated_at.date() >= month_ago),
        key=lambda c: c.name,
    )
    score = growth_score(g, len(new), rules.growth)
    if now == 0 and before == 0:
        reason = "no records synced in the last 60 days"
    else:
        driver = max(conns, key=lambda c: (abs(c.records_30 - c.records_prev_30), c.name))
        delta = driver.records_30 - driver.records_prev_30
        reason = f"{g * 100:+.0f}% records vs the previous 30 days ({driver.name} {_signed(delta)})"
    if new:
        reason += f"; {len(new)} new integration{'s' if len(new) != 1 else ''} ({new[0].name})"
    return Component(
        half_up(clamp(score)),
        reason,
        {
            "records_30d": now,
            "records_previous_30d": before,
            "growth": g,
            "new_integrations": [c.integration.key for c in new],
        },
    )


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + _num(abs(value))


COMPONENT_FUNCTIONS = {
    "activation_depth": activation_depth,
    "usage_volume": usage_volume,
    "health_status": health_status,
    "frequency": frequency,
    "sophistication": sophistication,
    "growth": growth,
}
