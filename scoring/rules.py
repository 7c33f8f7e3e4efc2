"""The signal rules: one declarative entry each in ``RULES``.

A rule names its kind and polarity, whether it looks at the account or at each of its
connections, a pure condition over the facts (returning the episode's details while
the condition holds, None when it does not), the segment an open episode puts the
account in, and the task an episode opens (title, owner role, due time). Thresholds
come from ``config.signals``. Adding a rule is adding one ``Rule(...)`` below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from integration_signals.config import SignalsConfig
from integration_signals.scoring.signal_facts import AccountFacts, ConnectionFacts

Polarity = Literal["positive", "expansion", "risk", "guard"]
OwnerRole = Literal["csm", "owner", "alert"]

# The global guard's account id (it is about the feed, not an account).
GLOBAL = "*"


def _pct(value: float) -> str:
    text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _day_end(day: date) -> datetime:
    """Midnight UTC after ``day``: the end of that day."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


@dataclass(frozen=True)
class TaskTemplate:
    """The playbook task an episode opens."""

    title: Callable[[dict[str, Any]], str]
    body: Callable[[dict[str, Any]], str]
    owner_role: OwnerRole
    # When the task is due, from the firing moment and the episode's details.
    due: Callable[[datetime, dict[str, Any], SignalsConfig], datetime]
    # Close the task (done, by "system") when the episode resolves, unless claimed.
    close_on_resolve: bool = True


@dataclass(frozen=True)
class Rule:
    """One signal rule. ``condition`` is pure: facts in, details (or None) out."""

    kind: str
    polarity: Polarity
    scope: Literal["account", "connection"]
    condition: Callable[..., dict[str, Any] | None]
    task: TaskTemplate
    segment: str | None = None


def _immediate(fired_at: datetime, _d: dict[str, Any], _c: SignalsConfig) -> datetime:
    return fired_at


# ---------------------------------------------------------------- conditions


def integration_activated(acct: AccountFacts, cfg: SignalsConfig) -> dict[str, Any] | None:
    rule = cfg.integration_activated
    at = acct.nth_activation_at
    if acct.active_integrations < rule.min_active or at is None:
        return None
    as_of: datetime = acct.as_of
    if (as_of - at).days >= rule.window_days:
        return None
    name = next(
        (c.integration_name for c in acct.connections if c.integration == acct.nth_integration),
        acct.nth_integration,
    )
    return {
        "active_integrations": acct.active_integrations,
        "integration": acct.nth_integration,
        "integration_name": name,
        "activated_at": at.isoformat(),
        "min_active": rule.min_active,
    }


def api_limit_proximity(acct: AccountFacts, cfg: SignalsConfig) -> dict[str, Any] | None:
    rule = cfg.api_limit_proximity
    limit = acct.api_limit_daily
    trend = acct.api
    if not limit or trend is None or trend.average < rule.threshold * limit:
        return None
    today = acct.as_of.date()
    projected = today if trend.average >= limit else trend.projected_limit_day
    return {
        "average_daily_calls": round(trend.average, 1),
        "api_limit_daily": limit,
        "ratio": round(trend.average / limit, 4),
        "average_days": rule.average_days,
        "slope_per_day": round(trend.slope, 2),
        "projected_limit_date": projected.isoformat() if projected else None,
    }


def _api_due(fired_at: datetime, details: dict[str, Any], cfg: SignalsConfig) -> datetime:
    rule = cfg.api_limit_proximity
    projected = details.get("projected_limit_date")
    if projected is None:
        return fired_at + timedelta(days=rule.due_days_without_projection)
    day = date.fromisoformat(projected) - timedelta(days=rule.lead_days)
    return max(fired_at, datetime.combine(day, time(0), tzinfo=UTC))


def health_degradation(
    acct: AccountFacts, conn: ConnectionFacts, cfg: SignalsConfig
) -> dict[str, Any] | None:
    rule = cfg.health_degradation
    rate = conn.success_rate_window
    if conn.uninstalled or rate is None or conn.attempts_window < rule.min_attempts:
        return None
    if rate >= rule.min_success_rate:
        return None
    return {
        "integration": conn.integration,
        "integration_name": conn.integration_name,
        "success_rate": round(rate, 4),
        "successes": conn.successes_window,
        "failures": conn.failures_window,
        "attempts": conn.attempts_window,
        "window_days": 7,
    }


def abandonment(
    acct: AccountFacts, conn: ConnectionFacts, cfg: SignalsConfig
) -> dict[str, Any] | None:
    rule = cfg.abandonment
    if conn.activated_at is None or conn.uninstalled or conn.idle_days is None:
        return None
    if conn.auth_expired_at is not None:
        return None  # broken, not abandoned: auth_expired covers it
    threshold = rule.idle_days
    if rule.respect_rhythm:
        threshold = max(threshold, conn.active_window_days)
    if conn.idle_days < threshold:
        return None
    return {
        "integration": conn.integration,
        "integration_name": conn.integration_name,
        "last_usage_day": conn.last_usage_day.isoformat() if conn.last_usage_day else None,
        "idle_days": conn.idle_days,
        "threshold_days": threshold,
    }


def _abandonment_due(fired_at: datetime, details: dict[str, Any], _c: SignalsConfig) -> datetime:
    """By the end of day ``threshold`` of inactivity (the playbook's "day 14"), or of the
    day it fires when that comes later."""
    last = date.fromisoformat(details["last_usage_day"])
    return _day_end(max(last + timedelta(days=details["threshold_days"]), fired_at.date()))


def auth_expired(
    acct: AccountFacts, conn: ConnectionFacts, cfg: SignalsConfig
) -> dict[str, Any] | None:
    if conn.auth_expired_at is None:
        return None
    return {
        "integration": conn.integration,
        "integration_name": conn.integration_name,
        "expired_at": conn.auth_expired_at.isoformat(),
    }


def _hours(get: Callable[[SignalsConfig], float]) -> Callable[..., datetime]:
    def due(fired_at: datetime, _d: dict[str, Any], cfg: SignalsConfig) -> datetime:
        return fired_at + timedelta(hours=get(cfg))

    return due


def onboarding_no_first_sync(acct: AccountFacts, cfg: SignalsConfig) -> dict[str, Any] | None:
    rule = cfg.onboarding
    tenure = acct.tenure_days
    if tenure is None or not rule.first_sync_by_day <= tenure < rule.period_days:
        return None
    if acct.first_sync_at is not None:
        return None
    return {
        "day": tenure,
        "created_at": acct.created_at.isoformat() if acct.created_at else None,
        "first_sync_by_day": rule.first_sync_by_day,
        "connections": len(acct.connections),
    }


def _first_sync_due(fired_at: datetime, details: dict[str, Any], cfg: SignalsConfig) -> datetime:
    created = datetime.fromisoformat(details["created_at"])
    return max(fired_at, created + timedelta(days=cfg.onboarding.first_sync_due_day))


def onboarding_low_activation(acct: AccountFacts, cfg: SignalsConfig) -> dict[str, Any] | None:
    rule = cfg.onboarding
    tenure = acct.tenure_days
    if tenure is None or not rule.active_by_day <= tenure < rule.period_days:
        return None
    if acct.active_integrations >= rule.min_active:
        return None
    return {
        "day": tenure,
        "active_integrations": acct.active_integrations,
        "min_active": rule.min_active,
        "active_by_day": rule.active_by_day,
    }


def feed_stale(details: dict[str, Any]) -> dict[str, Any]:
    return details


# ---------------------------------------------------------------- the registry

RULES: list[Rule] = [
    Rule(
        kind="integration_activated",
        polarity="positive",
        scope="account",
        condition=integration_activated,
        segment="expansion-ready",
        task=TaskTemplate(
            title=lambda d: (
                f"Expansion: {d['account_name']} activated its {_ordinal(d['min_active'])}"
                f" integration ({d['integration_name']}); {d['active_integrations']} active now"
            ),
            body=lambda d: (
                "Integration depth predicts upgrades: start the expansion conversation"
                " while momentum is high."
            ),
            owner_role="owner",
            due=_immediate,
            close_on_resolve=False,
        ),
    ),
    Rule(
        kind="api_limit_proximity",
        polarity="expansion",
        scope="account",
        condition=api_limit_proximity,
        segment="expansion-ready",
        task=TaskTemplate(
            title=lambda d: (
                f"Upgrade conversation: {d['account_name']} at {_pct(d['ratio'])} of its daily"
                " API limit"
                + (
                    f", projected to hit 100% on {d['projected_limit_date']}"
                    if d["projected_limit_date"]
                    else ""
                )
            ),
            body=lambda d: (
                f"{d['average_daily_calls']:,.0f} API calls/day over {d['average_days']} days"
                f" against a limit of {d['api_limit_daily']:,}: propose the next tier before"
                " they hit it."
            ),
            owner_role="owner",
            due=_api_due,
            close_on_resolve=False,
        ),
    ),
    Rule(
        kind="health_degradation",
        polarity="risk",
        scope="connection",
        condition=health_degradation,
        segment="at-risk",
        task=TaskTemplate(
            title=lambda d: (
                f"{d['integration_name']} at {d['account_name']}: {_pct(d['success_rate'])} sync"
                f" success ({d['failures']} of {d['attempts']} failed in {d['window_days']} days)"
            ),
            body=lambda d: (
                "Open a support ticket with the failing sync's errors and tell the customer"
                " you are on it."
            ),
            owner_role="csm",
            due=_hours(lambda c: c.health_degradation.due_hours),
        ),
    ),
    Rule(
        kind="abandonment",
        polarity="risk",
        scope="connection",
        condition=abandonment,
        task=TaskTemplate(
            title=lambda d: (
                f"Re-engage {d['account_name']}: {d['integration_name']} unused for"
                f" {d['idle_days']} days"
            ),
            body=lambda d: (
                f"Last used on {d['last_usage_day']}. Send the troubleshooting guide and usage"
                " tips; ask what changed."
            ),
            owner_role="csm",
            due=_abandonment_due,
        ),
    ),
    Rule(
        kind="auth_expired",
        polarity="risk",
        scope="connection",
        condition=auth_expired,
        task=TaskTemplate(
            title=lambda d: (
                f"Fix auth: {d['integration_name']} credentials expired at {d['account_name']}"
            ),
            body=lambda d: (
                f"Credentials broke at {d['expired_at']}; syncs fail until someone"
                " reconnects the integration."
            ),
            owner_role="csm",
            due=_hours(lambda c: c.auth_expired.due_hours),
        ),
    ),
    Rule(
        kind="onboarding_no_first_sync",
        polarity="risk",
        scope="account",
        condition=onboarding_no_first_sync,
        segment="onboarding",
        task=TaskTemplate(
            title=lambda d: f"Onboarding: {d['account_name']} has no first sync on day {d['day']}",
            body=lambda d: (
                "Reach out and help them connect their first core integration (goal: first"
                " sync within 7 days)."
            ),
            owner_role="csm",
            due=_first_sync_due,
        ),
    ),
    Rule(
        kind="onboarding_low_activation",
        polarity="risk",
        scope="account",
        condition=onboarding_low_activation,
        segment="onboarding",
        task=TaskTemplate(
            title=lambda d: (
                f"Onboarding: {d['account_name']} has {d['active_integrations']} active"
                f" integration{'s' if d['active_integrations'] != 1 else ''} on day {d['day']}"
                f" (goal {d['min_active']}+ by day {d['active_by_day']})"
            ),
            body=lambda d: (
                "Recommend the next integrations for their stack and offer a setup session."
            ),
            owner_role="csm",
            due=lambda fired, _d, cfg: (
                fired + timedelta(days=cfg.onboarding.low_activation_due_days)
            ),
        ),
    ),
]

# The guard is evaluated before the rules above and gates them.
FEED_STALE = Rule(
    kind="feed_stale",
    polarity="guard",
    scope="account",
    condition=feed_stale,
    task=TaskTemplate(
        title=lambda d: (
            f"Event feed stale: no events for {d['hours_without_events']} hours"
            if d.get("hours_without_events") is not None
            else "Event feed stale: no events received yet"
        ),
        body=lambda d: (
            f"Last event seen at {d['last_event_at']}. Risk signals and CRM writes are on"
            " hold until events flow again; check the ingest pipeline."
        ),
        owner_role="alert",
        due=_immediate,
    ),
)

KINDS: dict[str, Rule] = {r.kind: r for r in [*RULES, FEED_STALE]}
assert len(KINDS) == len(RULES) + 1, "rule kinds must be unique"


def task_title(kind: str, details: dict[str, Any], *, account_name: str) -> str:
    """The sentence an episode is told in: its task's title, used by the task itself,
    `signals signals` and anything else that explains a signal in words."""
    return KINDS[kind].task.title({**details, "account_name": account_name})[:500]
