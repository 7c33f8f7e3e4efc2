"""One account's score: a pure function of its facts, the config and the as-of day.

Overall = weighted sum of the six components, rounded half up; bands healthy /
watch / at_risk. Accounts in their first ``onboarding_days`` are scored on onboarding
progress instead (the seeds' activation journey: first sync within 7 days, 3+ active
by day 60) and marked ``stage = "onboarding"``; their six components are still shown.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from integration_signals.config import COMPONENTS, Bands, ScoringConfig
from integration_signals.scoring.components import (
    COMPONENT_FUNCTIONS,
    Component,
    Rules,
    half_up,
    rules_for,
)
from integration_signals.scoring.facts import AccountFacts

REASON_MAX = 255


@dataclass
class Score:
    account_id: str
    segment: str
    score: int
    band: str
    stage: str
    components: dict[str, dict[str, Any]]
    reason: str
    active_integrations: int
    details: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Changes exactly when what the score says changes (for history rows)."""
        blob = orjson.dumps(
            [self.score, self.band, self.stage, self.components, self.reason, self.details],
            option=orjson.OPT_SORT_KEYS,
        )
        return hashlib.sha256(blob).hexdigest()[:20]


def band_of(score: float, bands: Bands) -> str:
    if score >= bands.healthy:
        return "healthy"
    if score >= bands.watch:
        return "watch"
    return "at_risk"


def overall(component_scores: dict[str, float], weights: dict[str, float]) -> int:
    """Weighted sum of component scores (weights sum to 100), rounded half up."""
    total = sum(weights[name] * component_scores[name] for name in COMPONENTS) / 100
    return half_up(round(total, 9))


def activation_text(active: int, expected: int, day: int) -> str:
    """Onboarding's activation progress in words (the reason the CRM and Slack show):
    ``expected`` is how many active integrations the journey asks for by ``day``,
    rising to 3 by day 60. Never "4 of 3": a goal reached is said to be met."""
    noun = "integration" if active == 1 else "integrations"
    if active >= 3:
        return f"{active} {noun} active (goal: 3 by day 60, met)"
    if active >= expected:
        return f"{active} {noun} active, on track (goal: 3 by day 60)"
    return f"{active} {noun} active, {expected} expected by day {day} (goal: 3 by day 60)"


def onboarding_progress(facts: AccountFacts, health: Component, day: int) -> dict[str, Any]:
    """Score onboarding against the activation journey: first sync within 7 days,
    then toward 3+ active integrations by day 60."""
    start = facts.tenure_start()
    activations = [c.activated_at.date() for c in facts.connections if c.activated_at]
    first_day = (min(activations) - start).days if activations else None
    if first_day is not None:
        first = 100.0 if first_day <= 7 else max(0.0, 100.0 - (first_day - 7) * 4)
    else:
        first = 60.0 if day <= 5 else 40.0 if day <= 7 else 0.0
    active = sum(1 for c in facts.connections if c.state == "active")
    target = 1 + 2 * min(1.0, day / 60)
    progress = 100.0 * min(1.0, active / target)
    in_use = any(c.in_use for c in facts.connections)
    if in_use:
        value = 0.4 * first + 0.4 * progress + 0.2 * health.score
    else:
        value = 0.5 * first + 0.5 * progress
    goal = math.ceil(target - 1e-9)
    if first_day is None:
        first_text = "no first sync yet (goal: within 7 days)"
    else:
        first_text = f"first sync on day {first_day}"
    reason = f"onboarding day {day}: {first_text}; {activation_text(active, goal, day)}"
    return {
        "score": half_up(value),
        "reason": reason,
        "day": day,
        "first_sync_day": first_day,
        "first_sync_score": round(first, 3),
        "active": active,
        "target_active": round(target, 3),
        "progress_score": round(progress, 3),
    }


def score(facts: AccountFacts, config: ScoringConfig) -> Score:
    """The score of one account as of ``facts.as_of`` (no I/O, no clock)."""
    rules: Rules = rules_for(config, facts.segment)
    parts = {name: COMPONENT_FUNCTIONS[name](facts, rules) for name in COMPONENTS}
    components = {
        name: {
            "score": part.score,
            "weight": rules.weights[name],
            "reason": part.reason,
            "inputs": part.inputs,
        }
        for name, part in parts.items()
    }
    active = parts["activation_depth"].inputs["active_integrations"]
    day = max(0, (facts.as_of - facts.tenure_start()).days)
    # A compact copy of the component scores (what percentiles are computed from).
    details: dict[str, Any] = {
        "tenure_days": day,
        "component_scores": {name: part.score for name, part in parts.items()},
    }
    if 0 <= day < rules.onboarding_days:
        progress = onboarding_progress(facts, parts["health_status"], day)
        details["onboarding"] = progress
        value, stage, reason = progress["score"], "onboarding", progress["reason"]
    else:
        value = overall({n: p.score for n, p in parts.items()}, rules.weights)
        stage = "scored"
        # The top reason is the component that costs the most weighted points.
        worst = max(COMPONENTS, key=lambda n: (rules.weights[n] * (100 - parts[n].score), n))
        reason = parts[worst].reason
        details["top_component"] = worst
    return Score(
        account_id=facts.account_id,
        segment=rules.segment,
        score=value,
        band=band_of(value, rules.bands),
        stage=stage,
        components=components,
        reason=reason[:REASON_MAX],
        active_integrations=active,
        details=details,
    )
