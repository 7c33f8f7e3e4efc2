"""Block Kit builders: the dashboard from the `signals health` view model, within Slack's
limits however big the account, and data that can never become markup."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_signals.bot import blocks
from tests.fakes.slack import block_errors

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HOSTILE = {
    "quotes": 'O\'Brien "Holdings" `ltd`',
    "sql": "x'; DROP TABLE accounts; --",
    "soql": "' OR Name LIKE '%",
    "mention everyone": "<!channel> <!here> <!everyone> <@U123> <#C123>",
    "link": "<https://evil.example|click me>",
    "mrkdwn": "*bold* _it_ ~strike~ ```code``` > quote",
    "block kit json": '{"type":"section","text":{"type":"mrkdwn","text":"<!channel>"}}',
    "10 KB": "A" * 10_240,
    "emoji": "🚀 Rocket 🇺🇸 Corp 👩‍👩‍👧‍👦 :tada:",
    "control chars": "Acme\x00\x07\nCorp\r\n\t",
    "entities": "&amp; &lt; AT&T <>",
}


def _view(**overrides):
    view = {
        "account_id": "acme",
        "name": "Acme Corp",
        "segment": "enterprise",
        "plan": "enterprise",
        "mrr": 8500.0,
        "score": 88,
        "band": "healthy",
        "trend_30d": 6,
        "stage": "scored",
        "components": {
            "activation_depth": {
                "score": 92,
                "weight": 0.25,
                "reason": "7 active in 5 categories",
                "inputs": {},
            },
            "usage_volume": {
                "score": 88,
                "weight": 0.25,
                "reason": "API calls at 75% of the limit",
                "inputs": {},
            },
            "health_status": {
                "score": 78,
                "weight": 0.2,
                "reason": "Zendesk: 85% sync success (15 of 100 failed this week)",
                "inputs": {},
            },
            "frequency": {
                "score": 95,
                "weight": 0.15,
                "reason": "6 daily automated syncs",
                "inputs": {},
            },
            "sophistication": {
                "score": 85,
                "weight": 0.1,
                "reason": "custom fields + bi-directional",
                "inputs": {},
            },
            "growth": {
                "score": 90,
                "weight": 0.05,
                "reason": "+35% volume vs 90 days ago",
                "inputs": {},
            },
        },
        "integrations": [
            {
                "key": "salesforce",
                "name": "Salesforce",
                "category": "crm",
                "state": "active",
                "success_rate_7d": 0.98,
                "records_per_day": 15000,
                "last_success_at": "2026-11-20T10:00:00Z",
            },
            {
                "key": "zendesk",
                "name": "Zendesk",
                "category": "support",
                "state": "broken",
                "success_rate_7d": 0.85,
                "records_per_day": 1000,
                "last_success_at": "2026-11-18T12:00:00Z",
            },
            {
                "key": "looker",
                "name": "Looker",
                "category": "analytics",
                "state": "installed",
                "success_rate_7d": None,
                "records_per_day": None,
                "last_success_at": None,
            },
        ],
        "percentiles": {},
        "signals": [
            {
                "id": 1,
                "kind": "health_degradation",
                "fired_at": "2026-11-19T12:00:00Z",
                "details": {"integration": "zendesk"},
            }
        ],
        "tasks": [
            {
                "id": 7,
                "title": "Call Acme about Zendesk",
                "status": "claimed",
                "claimed_by": "U0DANA",
                "owner": "dana@example.com",
                "due_at": "2026-11-20T16:00:00Z",
            }
        ],
        "crm": {"salesforce_id": "001A000001", "hubspot_id": "9001"},
    }
    return {**view, **overrides}


def _all_text(message: dict) -> str:
    parts = []
    for block in message["blocks"]:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        for el in block.get("fields", []) + block.get("elements", []):
            if isinstance(el.get("text"), str):
                parts.append(el["text"])
            elif isinstance(el.get("text"), dict):
                parts.append(el["text"]["text"])
        if "accessory" in block:
            parts.append(block["accessory"]["text"]["text"])
    return "\n".join(parts)


def test_the_dashboard_shows_the_seeds_card():
    message = blocks.dashboard(
        _view(),
        now=NOW,
        crm_urls={"salesforce": "https://acme.my.salesforce.com/lightning/r/Account/{id}/view"},
    )
    assert block_errors(message["blocks"]) == []
    text = _all_text(message)
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Acme Corp · integration health"},
    }
    for expected in (
        "*Plan*\nenterprise",
        "*MRR*\n$8,500",
        "*88*/100 :large_green_circle: healthy",
        "+6 vs 30 days ago",
        ":red_circle: *Zendesk* · broken · 85% success · 1.0K/day · last good sync 2d ago",
        ":large_green_circle: *Salesforce* · active · 98% success · 15K/day · last good sync 2h ago",
        ":white_circle: *Looker* · installed",
        "Health status: *78*/100 · Zendesk: 85% sync success (15 of 100 failed this week)",
        "Growth trajectory: *90*/100",
        "health degradation: zendesk (since 24h ago)",
        "Call Acme about Zendesk · claimed · <@U0DANA> · in 4h",
        "Salesforce: <https://acme.my.salesforce.com/lightning/r/Account/001A000001/view|001A000001>",
        "HubSpot: 9001",
    ):
        assert expected in text
    # broken first: the CSM reads the problem before the good news
    assert text.index("*Zendesk*") < text.index("*Salesforce*")


def test_an_account_with_60_integrations_and_long_names_stays_within_slacks_limits():
    long = "Integration with a remarkably long and descriptive name " * 6
    integrations = [
        {
            "key": f"i{i}",
            "name": f"{long} #{i}",
            "category": "other",
            "state": ("active", "broken", "idle")[i % 3],
            "success_rate_7d": 0.5,
            "records_per_day": i * 1000,
            "last_success_at": NOW - timedelta(hours=i),
        }
        for i in range(60)
    ]
    view = _view(
        name="Enormous Conglomerate " * 20,
        plan="p" * 500,
        integrations=integrations,
        components={k: {"score": 50, "reason": "r" * 5000} for k, _ in blocks.COMPONENTS},
        signals=[{"kind": "abandonment", "details": {"integration": long}, "fired_at": NOW}] * 40,
        tasks=[{"title": long * 3, "status": "open", "owner": "x" * 300}] * 40,
    )
    for shown in (15, 40):
        message = blocks.dashboard(view, now=NOW, max_integrations=shown)
        assert block_errors(message["blocks"]) == []
        assert len(message["blocks"]) <= 50
        text = _all_text(message)
        assert f"…and {60 - shown} more: " in text
        assert "*Integrations (60)*  20 broken, 20 idle, 20 active" in text
        assert "…and 35 more" in text  # signals and tasks summarised too


@pytest.mark.parametrize("hostile", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_data_becomes_harmless_text(hostile: str):
    view = _view(
        name=hostile,
        plan=hostile,
        integrations=[
            {
                "key": "x",
                "name": hostile,
                "state": "active",
                "success_rate_7d": 1,
                "records_per_day": 1,
                "last_success_at": NOW,
            }
        ],
        components={"health_status": {"score": 10, "reason": hostile}},
        tasks=[{"title": hostile, "status": "open", "owner": hostile}],
        crm={"salesforce_id": hostile},
    )
    for message in (
        blocks.dashboard(view, now=NOW, crm_urls={"salesforce": "https://x/{id}"}),
        blocks.no_match(hostile, [hostile]),
        blocks.pick_list(hostile, [{"account_id": hostile, "name": hostile}]),
        blocks.task_message(
            {"id": 1, "title": hostile, "body": hostile, "owner": hostile, "account_name": hostile},
            now=NOW,
        ),
        blocks.account_list(
            "At risk",
            [{"account_id": "a", "name": hostile, "reason": hostile, "score": 1}],
            total=1,
            empty="-",
        ),
        blocks.notice(hostile),
    ):
        assert block_errors(message["blocks"]) == []
        for block in message["blocks"]:
            for obj in _mrkdwn_objects(block):
                # the only markup left is ours: no mentions, no links from the data
                assert "<!" not in obj and "<@U123>" not in obj and "<https://evil" not in obj
                assert "\x00" not in obj


def _mrkdwn_objects(block: dict) -> list[str]:
    objs = []
    if isinstance(block.get("text"), dict) and block["text"]["type"] == "mrkdwn":
        objs.append(block["text"]["text"])
    for el in block.get("fields", []) + block.get("elements", []):
        if el.get("type") == "mrkdwn":
            objs.append(el["text"])
    return objs


@settings(max_examples=150, deadline=None)
@given(text=st.text(min_size=0, max_size=4000), limit=st.integers(min_value=2, max_value=3000))
def test_safe_text_is_escaped_and_never_longer_than_its_limit(text: str, limit: int):
    out = blocks.safe(text, limit, one_line=False)
    assert len(out) <= limit
    assert "<" not in out and ">" not in out
    # every & starts a whole entity: none is cut in half
    assert "&" not in re.sub(r"&(amp|lt|gt);", "", out)


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(max_size=400),
    n=st.integers(min_value=0, max_value=80),
    reason=st.text(max_size=3500),
)
def test_any_dashboard_is_a_valid_message(name: str, n: int, reason: str):
    integrations = [
        {
            "key": str(i),
            "name": name,
            "state": "idle",
            "success_rate_7d": 0.1,
            "records_per_day": 5,
            "last_success_at": None,
        }
        for i in range(n)
    ]
    view = _view(
        name=name, integrations=integrations, components={"growth": {"score": 1, "reason": reason}}
    )
    message = blocks.dashboard(view, now=NOW)
    assert block_errors(message["blocks"]) == []
    assert len(message["text"]) <= 3000


def test_task_buttons_follow_the_status():
    def ids(status: str) -> list[str]:
        msg = blocks.task_message(
            {"id": 3, "title": "t", "status": status, "claimed_by": "U1"}, now=NOW
        )
        return [
            el["action_id"] for b in msg["blocks"] if b["type"] == "actions" for el in b["elements"]
        ]

    assert ids("open") == ["task_claim", "task_done", "task_snooze"]
    assert ids("claimed") == ["task_done", "task_snooze"]
    assert ids("snoozed") == ["task_claim", "task_done"]
    assert ids("done") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "-"),
        (0, "0/day"),
        (999, "999/day"),
        (1500, "1.5K/day"),
        (15000, "15K/day"),
        (2_000_000, "2.0M/day"),
    ],
    ids=["none", "zero", "hundreds", "thousands", "tens of thousands", "millions"],
)
def test_volume_per_day_reads_like_the_seeds_card(value, expected):
    assert blocks.per_day(value) == expected
