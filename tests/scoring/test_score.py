"""Scores from data that went in through ingest: Acme, states, onboarding, explanations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from integration_signals.scoring.facts import load_facts
from integration_signals.scoring.health import account_health
from integration_signals.scoring.run import score_accounts
from integration_signals.scoring.score import activation_text
from tests.scoring.builders import CONFIG, NOW, Feed, account, acme_like, import_accounts


def test_an_acme_like_account_is_healthy_and_health_status_names_zendesk(engine):
    import_accounts(engine, [account("acme", name="Acme Corp", api_limit_daily=200_000)])
    feed = Feed()
    acme_like(feed)
    feed.ingest(engine)
    score_accounts(engine, CONFIG, as_of=NOW)
    h = account_health(engine, CONFIG, "acme", as_of=NOW)
    scores = {name: c["score"] for name, c in h["components"].items()}
    assert h["band"] == "healthy" and h["stage"] == "scored"
    assert 80 <= h["score"] <= 95
    assert min(scores, key=scores.get) == "health_status"
    reason = h["components"]["health_status"]["reason"]
    assert reason == "Zendesk: 85% sync success (15 of 100 failed this week)"
    assert h["reason"] == reason  # the top reason is the costliest component's
    assert h["components"]["activation_depth"]["inputs"]["active_integrations"] == 7
    assert h["components"]["activation_depth"]["inputs"]["categories"] == 5
    zendesk = next(i for i in h["integrations"] if i["key"] == "zendesk")
    assert zendesk["state"] == "active" and zendesk["success_rate_7d"] == 0.85


def test_broken_and_idle_are_never_lumped(engine):
    import_accounts(engine, [account("a")])
    feed = Feed()
    for key in ("salesforce", "hubspot", "slack", "zendesk", "snowflake", "segment"):
        feed.install("a", key, 60)
    feed.syncs("a", "salesforce", range(60))  # active
    feed.syncs("a", "hubspot", range(20, 60))  # idle: nothing attempted for 20 days
    feed.syncs("a", "slack", range(3, 60))
    feed.syncs("a", "slack", [2, 1, 0], per_day=0, failures=3)  # broken: latest attempts fail
    feed.syncs("a", "zendesk", range(5, 60))
    feed.add("a", "zendesk", "auth.expired", feed.at(4))  # broken: credentials
    # snowflake: installed, never synced; segment: uninstalled
    feed.syncs("a", "segment", range(30, 60))
    feed.add("a", "segment", "integration.uninstalled", feed.at(29))
    feed.ingest(engine)
    facts = load_facts(engine, CONFIG, as_of=NOW.date())["a"]
    states = {c.integration.key: c.state for c in facts.connections}
    assert states == {
        "salesforce": "active",
        "hubspot": "idle",
        "slack": "broken",
        "zendesk": "broken",
        "snowflake": "installed",
        "segment": "uninstalled",
    }
    # auth restored -> no longer broken
    feed.add("a", "zendesk", "auth.restored", feed.at(0, 1))
    feed.syncs("a", "zendesk", [0])
    feed.ingest(engine)
    facts = load_facts(engine, CONFIG, as_of=NOW.date())["a"]
    assert {c.integration.key: c.state for c in facts.connections}["zendesk"] == "active"


def test_an_idle_connection_turns_idle_by_time_alone(engine):
    import_accounts(engine, [account("a")])
    feed = Feed()
    feed.install("a", "salesforce", 30)
    feed.syncs("a", "salesforce", range(6, 30))  # last good sync 6 days ago (window 7)
    feed.ingest(engine)
    assert load_facts(engine, CONFIG, as_of=NOW.date())["a"].connections[0].state == "active"
    tomorrow = (NOW + timedelta(days=1)).date()
    assert load_facts(engine, CONFIG, as_of=tomorrow)["a"].connections[0].state == "idle"


def test_accounts_in_their_first_90_days_are_scored_on_onboarding_progress(engine):
    import_accounts(
        engine, [account("new", "smb", tenure_days=20), account("late", "smb", tenure_days=10)]
    )
    feed = Feed()
    feed.install("new", "salesforce", 19)
    feed.syncs("new", "salesforce", range(18))  # first sync 17 days ago: tenure day 3
    feed.install("new", "slack", 10)
    feed.syncs("new", "slack", range(9))
    feed.install("late", "hubspot", 9)  # never synced, day 10
    feed.ingest(engine)
    report = score_accounts(engine, CONFIG, as_of=NOW)
    new, late = report.scores["new"], report.scores["late"]
    assert new.stage == late.stage == "onboarding"
    assert new.details["onboarding"]["first_sync_day"] == 3
    assert new.reason.startswith(
        "onboarding day 20: first sync on day 3; 2 integrations active, on track"
    )
    assert "no first sync yet" in late.reason
    assert new.score > late.score
    assert set(new.components) == {
        "activation_depth",
        "usage_volume",
        "health_status",
        "frequency",
        "sophistication",
        "growth",
    }


def test_a_past_as_of_uses_no_later_data(engine):
    """Scoring as of a past day equals scoring a store that only ever saw data up to it."""
    import_accounts(engine, [account("a", "mid_market")])
    feed = Feed()
    feed.install("a", "salesforce", 50, bidirectional=True)
    feed.syncs("a", "salesforce", range(50))
    feed.install("a", "hubspot", 40)
    feed.syncs("a", "hubspot", range(10, 40), failures=1)
    feed.add("a", "hubspot", "auth.expired", feed.at(12))
    feed.add("a", "hubspot", "auth.restored", feed.at(5))
    feed.syncs("a", "hubspot", range(5))
    feed.install("a", "zendesk", 8, filters=3)
    feed.syncs("a", "zendesk", range(7))
    feed.add("a", "salesforce", "integration.configured", feed.at(3), properties={})
    feed.add("a", "salesforce", "integration.uninstalled", feed.at(2))
    past = NOW - timedelta(days=11)
    cutoff = (past + timedelta(days=1)).replace(hour=0, minute=0).isoformat()[:19]
    later = [e for e in feed.events if e["occurred_at"][:19] >= cutoff]
    feed.events = [e for e in feed.events if e["occurred_at"][:19] < cutoff]
    feed.ingest(engine)  # the store as it was on the past day
    before = score_accounts(engine, CONFIG, as_of=past, full=True).scores["a"]
    feed.events = later
    feed.ingest(engine)  # everything after it arrives
    after = score_accounts(engine, CONFIG, as_of=past, full=True).scores["a"]
    assert after.components == before.components
    assert (after.score, after.band, after.stage) == (before.score, before.band, before.stage)
    facts = load_facts(engine, CONFIG, as_of=past.date())["a"]
    states = {c.integration.key: c.state for c in facts.connections}
    assert states == {"salesforce": "active", "hubspot": "broken"}  # zendesk not yet installed
    now_states = {
        c.integration.key: c.state
        for c in load_facts(engine, CONFIG, as_of=NOW.date())["a"].connections
    }
    assert now_states == {"salesforce": "uninstalled", "hubspot": "active", "zendesk": "active"}


@pytest.mark.parametrize(
    ("active", "expected", "day", "text"),
    [
        (4, 3, 75, "4 integrations active (goal: 3 by day 60, met)"),
        (3, 2, 30, "3 integrations active (goal: 3 by day 60, met)"),
        (2, 2, 20, "2 integrations active, on track (goal: 3 by day 60)"),
        (1, 1, 0, "1 integration active, on track (goal: 3 by day 60)"),
        (1, 2, 20, "1 integration active, 2 expected by day 20 (goal: 3 by day 60)"),
        (0, 3, 70, "0 integrations active, 3 expected by day 70 (goal: 3 by day 60)"),
    ],
    ids=["met-past-goal", "met-early", "on-track", "one-on-day-0", "behind", "none"],
)
def test_onboarding_activation_reads_as_progress_never_4_of_3(active, expected, day, text):
    assert activation_text(active, expected, day) == text


def test_an_onboarding_account_past_its_goal_says_the_goal_is_met(engine):
    import_accounts(engine, [account("fast", "smb", tenure_days=30)])
    feed = Feed()
    for integration in ("salesforce", "hubspot", "slack", "zendesk"):
        feed.install("fast", integration, 28)
        feed.syncs("fast", integration, range(27))
    feed.ingest(engine)
    fast = score_accounts(engine, CONFIG, as_of=NOW).scores["fast"]
    assert fast.stage == "onboarding"
    onboarding = fast.details["onboarding"]["reason"]
    assert "4 integrations active (goal: 3 by day 60, met)" in onboarding
    assert " of 3 integrations" not in onboarding and " of 2 integrations" not in onboarding
