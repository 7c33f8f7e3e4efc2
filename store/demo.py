"""A deterministic, realistic demo data set: ~300 accounts, ~20 integrations, 180 days.

Patterns in it: healthy automated daily syncs with weekday seasonality and growth,
setups that never activate, abandonment, broken auth, degrading connections,
manual-only use, accounts growing toward their API limit, onboarding accounts, and
Acme Corp (``acme``) as in SPEC section 4. For impact analysis two effects are
planted: Snowflake adoption lowers churn (a real effect); Salesforce adoption is
common among big accounts, which churn less anyway, but changes nothing itself
(a confounded, useless one).

Only the end moment varies between runs: every offset is relative to ``end``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DAYS = 180

_FIRST = (
    "North",
    "Blue",
    "Bright",
    "Silver",
    "Iron",
    "Granite",
    "Maple",
    "Harbor",
    "Summit",
    "Cedar",
    "Falcon",
    "Quantum",
    "Vertex",
    "Lumen",
    "Pioneer",
    "Crescent",
    "Atlas",
    "Nova",
    "Orchid",
    "Redwood",
    "Sterling",
    "Cobalt",
    "Evergreen",
    "Beacon",
    "Keystone",
    "Meridian",
    "Polar",
    "Riverstone",
    "Sapphire",
    "Tidal",
    "Juniper",
    "Horizon",
    "Copper",
    "Willow",
)
_SECOND = (
    "Logistics",
    "Analytics",
    "Health",
    "Labs",
    "Systems",
    "Retail",
    "Bank",
    "Media",
    "Foods",
    "Energy",
    "Robotics",
    "Insurance",
    "Software",
    "Partners",
    "Networks",
    "Motors",
    "Studios",
    "Capital",
    "Apparel",
    "Learning",
    "Travel",
    "Security",
    "Pharma",
    "Freight",
)
_INDUSTRIES = ("software", "retail", "finance", "healthcare", "manufacturing", "media", "education")
_CSMS = ("dana@example.com", "lee@example.com", "priya@example.com", "sam@example.com")
_AES = ("alex@example.com", "jordan@example.com", "morgan@example.com")
_PLANS = {
    "smb": (("starter", 300, 1_500, 5_000), ("growth", 900, 3_000, 20_000)),
    "mid_market": (("growth", 1_800, 5_000, 20_000), ("pro", 3_500, 8_000, 50_000)),
    "enterprise": (("pro", 6_000, 14_000, 50_000), ("enterprise", 9_000, 30_000, 200_000)),
}
_SYNCS_PER_DAY = {"smb": (1, 1), "mid_market": (1, 2), "enterprise": (1, 3)}
_N_INTEGRATIONS = {"smb": (1, 3), "mid_market": (2, 5), "enterprise": (4, 9)}
_BASE_RECORDS = {"smb": 400, "mid_market": 2_000, "enterprise": 8_000}
_CHURN_BASE = {"smb": 0.30, "mid_market": 0.18, "enterprise": 0.10}
_SALESFORCE_ADOPTION = {"smb": 0.15, "mid_market": 0.55, "enterprise": 0.9}

# Weighted by how common each integration is among customers.
_POPULARITY = {
    "salesforce": 9,
    "hubspot": 8,
    "slack": 9,
    "snowflake": 5,
    "bigquery": 3,
    "redshift": 2,
    "segment": 4,
    "rudderstack": 1,
    "marketo": 3,
    "mailchimp": 4,
    "intercom": 4,
    "zendesk": 5,
    "freshdesk": 2,
    "amplitude": 3,
    "mixpanel": 2,
    "looker": 2,
    "teams": 2,
    "gong": 2,
    "docusign": 2,
    "jira": 4,
    "pipedrive": 1,
}
_CATEGORY = {
    "salesforce": "crm",
    "hubspot": "crm",
    "pipedrive": "crm",
    "snowflake": "data_warehouse",
    "bigquery": "data_warehouse",
    "redshift": "data_warehouse",
    "segment": "cdp",
    "rudderstack": "cdp",
    "marketo": "marketing",
    "mailchimp": "marketing",
    "intercom": "support",
    "zendesk": "support",
    "freshdesk": "support",
    "amplitude": "analytics",
    "mixpanel": "analytics",
    "looker": "analytics",
    "slack": "messaging",
    "teams": "messaging",
    "gong": "other",
    "docusign": "other",
    "jira": "other",
}
_EVERY_DAYS = {"mailchimp": 7, "looker": 7, "gong": 7, "jira": 7, "docusign": 9}
_ERRORS = ("RATE_LIMITED", "TIMEOUT", "FIELD_MAPPING_INVALID", "UPSTREAM_5XX")


@dataclass
class DemoData:
    accounts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    patterns: dict[str, int] = field(default_factory=dict)


class _Builder:
    def __init__(self, seed: int, end: datetime) -> None:
        self.rng = random.Random(seed)
        self.end = end
        self.start = end - timedelta(days=DAYS)
        self.data = DemoData()
        self._n = 0

    def at(self, day: int, hour: float) -> str:
        """Timestamp ``day`` days after the window start at ``hour`` (clamped to end)."""
        moment = self.start + timedelta(days=day, hours=hour)
        return min(moment, self.end - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")

    def event(
        self,
        account: str,
        cid: str,
        integration: str,
        etype: str,
        day: int,
        hour: float,
        **fields: Any,
    ) -> None:
        self._n += 1
        self.data.events.append(
            {
                "event_id": f"demo-{self._n:07d}",
                "type": etype,
                "occurred_at": self.at(day, hour),
                "account_id": account,
                "integration": integration,
                "connection_id": cid,
                **fields,
            }
        )

    def count(self, pattern: str) -> None:
        self.data.patterns[pattern] = self.data.patterns.get(pattern, 0) + 1


def _config(rng: random.Random, depth: float) -> dict[str, Any]:
    return {
        "bidirectional": rng.random() < depth,
        "custom_fields": int(depth * rng.randint(0, 25)),
        "filters": int(depth * rng.randint(0, 6)),
        "transformations": int(depth * rng.randint(0, 4)),
        "objects": max(1, int(1 + depth * rng.randint(0, 6))),
    }


def _connection(
    b: _Builder,
    account: str,
    integration: str,
    *,
    segment: str,
    install_day: int,
    pattern: str,
    syncs_per_day: int,
    base_records: float,
    growth: float = 0.0,
    fail_rate: float = 0.02,
    depth: float = 0.4,
    api_per_record: float = 0.02,
    stop_day: int | None = None,
    break_day: int | None = None,
    restore_day: int | None = None,
    recent_fail_rate: float | None = None,
) -> None:
    rng = b.rng
    cid = f"{account}-{integration}"
    b.count(pattern)
    b.event(account, cid, integration, "integration.setup_started", install_day, 9.0)
    if pattern == "setup_failed":
        b.event(
            account,
            cid,
            integration,
            "integration.setup_failed",
            install_day,
            9.2,
            error="OAUTH_DENIED",
        )
        return
    b.event(account, cid, integration, "integration.installed", install_day, 9.5)
    b.event(
        account,
        cid,
        integration,
        "integration.configured",
        install_day,
        9.7,
        properties=_config(rng, depth),
    )
    if pattern == "never_activated":
        return
    first = install_day + max(0, int(rng.expovariate(1 / 3)))
    every = _EVERY_DAYS.get(integration, 1)
    last_day = DAYS if stop_day is None else min(stop_day, DAYS)
    manual = pattern == "manual_only"
    day = first
    while day <= last_day:
        if manual:
            gap = rng.randint(3, 9)
        else:
            gap = every
        weekday = (b.start + timedelta(days=day)).weekday()
        season = 0.45 if weekday >= 5 else 1.0
        trend = math.exp(growth * (day - first) / 30)
        broken = (
            break_day is not None
            and day >= break_day
            and (restore_day is None or day < restore_day)
        )
        rate = fail_rate
        if recent_fail_rate is not None and day >= DAYS - 7:
            rate = recent_fail_rate
        for k in range(syncs_per_day if not manual else 1):
            hour = 2 + k * (20 / max(1, syncs_per_day)) + rng.random()
            if broken:
                b.event(
                    account,
                    cid,
                    integration,
                    "sync.failed",
                    day,
                    hour,
                    error="AUTH_EXPIRED",
                    properties={"message": "token expired"},
                )
                continue
            if rng.random() < rate:
                b.event(
                    account,
                    cid,
                    integration,
                    "sync.failed",
                    day,
                    hour,
                    error=rng.choice(_ERRORS),
                    properties={"message": "sync attempt failed"},
                )
                continue
            records = max(1, int(base_records * season * trend * rng.uniform(0.7, 1.3)))
            b.event(
                account,
                cid,
                integration,
                "sync.succeeded",
                day,
                hour,
                records=records,
                bytes=records * rng.randint(300, 900),
                api_calls=max(1, int(records * api_per_record)),
                trigger="manual" if manual else ("webhook" if k % 3 == 2 else "scheduled"),
            )
        if break_day is not None and day == break_day:
            b.event(account, cid, integration, "auth.expired", day, 1.0)
        if restore_day is not None and day == restore_day:
            b.event(account, cid, integration, "auth.restored", day, 1.5)
        day += gap
    if pattern == "uninstalled" and stop_day is not None and stop_day < DAYS:
        b.event(account, cid, integration, "integration.uninstalled", stop_day + 1, 10.0)


def _acme(b: _Builder) -> None:
    """Acme Corp as in SPEC section 4: enterprise, $8,500 MRR, 7 integrations in 5
    categories, Zendesk failing about 15% of its syncs this week."""
    b.data.accounts.append(
        {
            "account_id": "acme",
            "name": "Acme Corp",
            "domain": "acme.com",
            "segment": "enterprise",
            "plan": "enterprise",
            "mrr": 8500,
            "industry": "manufacturing",
            "employees": 2400,
            "created_at": (b.end - timedelta(days=900)).isoformat(),
            "renewal_date": (b.end + timedelta(days=75)).date().isoformat(),
            "api_limit_daily": 200_000,
            "csm": "dana@example.com",
            "owner": "alex@example.com",
            "salesforce_id": "001ACME00000000001",
            "hubspot_id": "90001",
            "renewed": None,
            "expansion_mrr": 1500,
            "region": "emea",
            "seats": 340,
        }
    )
    plan = [
        ("salesforce", 4, 9_000),
        ("hubspot", 3, 3_000),
        ("snowflake", 4, 20_000),
        ("bigquery", 2, 6_000),
        ("segment", 4, 12_000),
        ("slack", 3, 800),
        ("zendesk", 14, 300),
    ]
    for integration, per_day, records in plan:
        _connection(
            b,
            "acme",
            integration,
            segment="enterprise",
            install_day=b.rng.randint(0, 25),
            pattern="healthy",
            syncs_per_day=per_day,
            base_records=records,
            growth=0.25,
            fail_rate=0.0 if integration != "zendesk" else 0.04,
            depth=0.6,
            recent_fail_rate=0.15 if integration == "zendesk" else 0.0,
        )


def generate(seed: int = 7, n_accounts: int = 300, *, end: datetime) -> DemoData:
    b = _Builder(seed, end)
    rng = b.rng
    _acme(b)
    keys = list(_POPULARITY)
    weights = [_POPULARITY[k] for k in keys]
    used_names: set[str] = {"Acme Corp"}
    for i in range(1, n_accounts):
        segment = rng.choices(("smb", "mid_market", "enterprise"), (0.55, 0.30, 0.15))[0]
        plan, mrr_lo, mrr_hi, api_limit = rng.choice(_PLANS[segment])
        name = f"{rng.choice(_FIRST)} {rng.choice(_SECOND)}"
        while name in used_names:
            name = f"{rng.choice(_FIRST)} {rng.choice(_SECOND)} {rng.randint(2, 99)}"
        used_names.add(name)
        account = f"acct-{i:04d}"
        onboarding = rng.random() < 0.12
        tenure_days = rng.randint(5, 85) if onboarding else rng.randint(200, 1400)
        employees = {"smb": (5, 200), "mid_market": (200, 2000), "enterprise": (2000, 40000)}[
            segment
        ]
        mrr = round(rng.uniform(mrr_lo, mrr_hi), -1)
        start_offset = max(0, DAYS - tenure_days)
        n_int = rng.randint(*_N_INTEGRATIONS[segment])
        chosen: list[str] = []
        if rng.random() < _SALESFORCE_ADOPTION[segment]:
            chosen.append("salesforce")
        while len(chosen) < n_int:
            pick = rng.choices(keys, weights)[0]
            if pick not in chosen:
                chosen.append(pick)
        churn_p = _CHURN_BASE[segment] + (0.05 if plan in ("starter", "growth") else 0.0)
        has_snowflake = "snowflake" in chosen
        if has_snowflake:
            churn_p -= 0.12  # the planted, real effect
        growing_to_limit = segment != "smb" and rng.random() < 0.06
        account_row: dict[str, Any] = {
            "account_id": account,
            "name": name,
            "domain": name.lower().replace(" ", "") + ".com",
            "segment": segment,
            "plan": plan,
            "mrr": mrr,
            "industry": rng.choice(_INDUSTRIES),
            "employees": rng.randint(*employees),
            "created_at": (end - timedelta(days=tenure_days)).isoformat(),
            "renewal_date": (end + timedelta(days=rng.randint(-120, 300))).date().isoformat(),
            "api_limit_daily": api_limit,
            "csm": rng.choice(_CSMS),
            "owner": rng.choice(_AES),
            "salesforce_id": f"001DEMO{i:011d}" if rng.random() < 0.7 else None,
            "hubspot_id": str(80000 + i) if rng.random() < 0.6 else None,
            "region": rng.choice(("amer", "emea", "apac")),
            "seats": rng.randint(3, 400),
        }
        churned = rng.random() < max(0.02, churn_p)
        if not onboarding:
            account_row["renewed"] = not churned
            account_row["expansion_mrr"] = (
                0 if churned else round(max(0.0, rng.gauss(0.08, 0.1)) * mrr, -1)
            )
        churn_day = DAYS - rng.randint(5, 60) if churned and not onboarding else None
        if churn_day is not None:
            account_row["churned_at"] = (b.start + timedelta(days=churn_day)).isoformat()
        b.data.accounts.append(account_row)
        per_day = rng.randint(*_SYNCS_PER_DAY[segment])
        base = _BASE_RECORDS[segment] * rng.uniform(0.3, 2.0)
        for n, integration in enumerate(chosen):
            roll = rng.random()
            install_day = min(
                DAYS - 1, start_offset + int(rng.expovariate(1 / 10)) + n * rng.randint(0, 12)
            )
            kw: dict[str, Any] = {
                "segment": segment,
                "install_day": install_day,
                "syncs_per_day": per_day,
                "base_records": base,
                "depth": rng.uniform(0.1, 0.9),
                "growth": rng.uniform(-0.1, 0.15),
            }
            if churn_day is not None:
                kw.update(pattern="uninstalled", stop_day=max(install_day + 3, churn_day - 10))
            elif roll < 0.08:
                kw.update(pattern="never_activated")
            elif roll < 0.11:
                kw.update(pattern="setup_failed")
            elif roll < 0.19 and install_day < DAYS - 40:
                kw.update(pattern="abandoned", stop_day=DAYS - rng.randint(15, 60))
            elif roll < 0.24:
                kw.update(
                    pattern="broken_auth",
                    break_day=DAYS - rng.randint(2, 20),
                    restore_day=None if rng.random() < 0.7 else DAYS - 1,
                )
            elif roll < 0.29:
                kw.update(pattern="degrading", recent_fail_rate=rng.uniform(0.22, 0.4))
            elif roll < 0.36:
                kw.update(pattern="manual_only")
            else:
                kw.update(pattern="healthy")
            if growing_to_limit and n == 0:
                # API calls climb toward the plan's daily limit over the last months.
                kw.update(
                    pattern="growing_to_limit",
                    growth=0.35,
                    api_per_record=0.7 * api_limit / (base * per_day * math.exp(0.35 * 5)),
                )
            _connection(b, account, integration, **kw)
    b.data.events.sort(key=lambda e: e["occurred_at"])
    return b.data
