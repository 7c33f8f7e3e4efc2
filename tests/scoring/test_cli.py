"""`signals score`, `health`, `funnel`, `retention`, `ttv` end to end through the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.scoring.builders import NOW, Feed, account, acme_like, import_accounts

AS_OF = NOW.isoformat()
COMPONENT_KEYS = {"score", "weight", "reason", "inputs"}


@pytest.fixture
def world(engine):
    import_accounts(
        engine,
        [
            account(
                "acme",
                name="Acme Corp",
                domain="acme.com",
                api_limit_daily=200_000,
                salesforce_id="001ACME",
                hubspot_id="9001",
            ),
            account("n1", "smb", name="North Foods", domain="northfoods.com"),
            account("n2", "smb", name="North Food", domain="northfood.com"),
        ],
    )
    feed = Feed()
    acme_like(feed)
    for a in ("n1", "n2"):
        feed.install(a, "hubspot", 100)
        feed.syncs(a, "hubspot", range(20, 100))  # idle for 20 days
        feed.install(a, "slack", 60)  # never synced
    feed.ingest(engine)
    return engine


def test_score_prints_every_account_in_the_issue_shape(cli, world):
    first = cli("score", "--as-of", AS_OF, "--json")
    assert first.exit_code == 0, first.stderr
    data = json.loads(first.stdout)
    assert set(data) >= {"as_of", "accounts"}
    assert [a["account_id"] for a in data["accounts"]] == ["acme", "n1", "n2"]
    for row in data["accounts"]:
        assert set(row) >= {"account_id", "score", "band", "components", "segments"}
        assert set(row["components"]) == {
            "activation_depth",
            "usage_volume",
            "health_status",
            "frequency",
            "sophistication",
            "growth",
        }
        assert all(set(c) >= COMPONENT_KEYS for c in row["components"].values())
        # segments belong to signals, which `signals score` runs after scoring
        assert set(row["segments"]) <= {"expansion-ready", "at-risk", "onboarding"}
    # a second run rescores nothing but still lists every account
    again = json.loads(cli("score", "--as-of", AS_OF, "--json").stdout)
    assert again["run"]["rescored"] == 0 and len(again["accounts"]) == 3
    assert [a["score"] for a in again["accounts"]] == [a["score"] for a in data["accounts"]]
    human = cli("score", "--as-of", AS_OF)
    assert human.exit_code == 0 and "Acme Corp" in human.stdout


def test_health_json_document(cli, world):
    cli("score", "--as-of", AS_OF)
    result = cli("health", "Acme Corp", "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stderr
    d = json.loads(result.stdout)
    assert set(d) >= {
        "account_id",
        "name",
        "segment",
        "plan",
        "mrr",
        "score",
        "band",
        "trend_30d",
        "stage",
        "components",
        "integrations",
        "percentiles",
        "signals",
        "tasks",
        "crm",
    }
    assert d["account_id"] == "acme" and d["band"] == "healthy" and d["stage"] == "scored"
    assert d["crm"] == {"salesforce_id": "001ACME", "hubspot_id": "9001"}
    assert len(d["integrations"]) == 7
    for i in d["integrations"]:
        assert set(i) >= {
            "key",
            "name",
            "category",
            "state",
            "success_rate_7d",
            "records_per_day",
            "last_success_at",
        }
    assert d["percentiles"]["segment"] == "enterprise"
    assert d["trend_30d"] is None  # no score 30 days ago yet
    # by domain, and the dashboard card for people
    card = cli("health", "acme.com", "--as-of", AS_OF)
    assert card.exit_code == 0
    assert "OVERALL INTEGRATION SCORE" in card.stdout and "Zendesk" in card.stdout


def test_trend_compares_with_the_score_30_days_earlier(cli, world):
    cli("score", "--as-of", (NOW - timedelta(days=30)).isoformat())
    cli("score", "--as-of", AS_OF)
    d = json.loads(cli("health", "acme", "--as-of", AS_OF, "--json").stdout)
    assert d["trend_30d"] == d["score"] - d["trend"]["previous"]


def test_health_with_several_matches_lists_them_and_fails(cli, world):
    result = cli("health", "north", "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "accounts match 'north'" in result.stderr
    assert "n1" in result.stderr and "n2" in result.stderr


def test_health_with_no_match_names_the_nearest(cli, world):
    result = cli("health", "Acme Crop Industries")
    assert result.exit_code == 1
    assert "no account matches 'Acme Crop Industries'; nearest: Acme Corp" in result.stderr


def test_funnel_keeps_broken_and_idle_apart(cli, world):
    d = json.loads(cli("funnel", "--as-of", AS_OF, "--json").stdout)
    rows = {r["integration"]: r for r in d["integrations"]}
    keys = {
        "integration",
        "installed",
        "activated",
        "active",
        "broken",
        "idle",
        "uninstalled",
        "retained_30",
        "eligible_30",
        "retained_90",
        "eligible_90",
        "largest_drop",
    }
    assert all(set(r) >= keys for r in rows.values())
    assert (
        rows["hubspot"]["installed"],
        rows["hubspot"]["activated"],
        rows["hubspot"]["idle"],
    ) == (3, 3, 2)
    assert rows["slack"]["installed"] == 3 and rows["slack"]["activated"] == 1
    assert rows["slack"]["largest_drop"]["from"] == "installed"
    only = json.loads(
        cli(
            "funnel", "--integration", "hubspot", "--segment", "smb", "--as-of", AS_OF, "--json"
        ).stdout
    )
    assert [r["integration"] for r in only["integrations"]] == ["hubspot"]
    assert only["integrations"][0]["installed"] == 2


def test_retention_json_and_plot(cli, world, tmp_path: Path):
    out = tmp_path / "r.png"
    result = cli(
        "retention", "--integration", "hubspot", "--as-of", AS_OF, "--plot", str(out), "--json"
    )
    assert result.exit_code == 0, result.stderr
    d = json.loads(result.stdout)
    assert d["connections"] == 3
    assert set(d["retained_at"]) == {"7", "30", "60", "90"}
    # two of three hubspot connections stopped 20 days ago after 80 days: S(90) = 1/3
    assert d["retained_at"]["90"] == pytest.approx(1 / 3, rel=1e-12)
    assert d["curve"][0] == {"day": 0, "retained": 1.0, "at_risk": 3, "events": 0, "censored": 0}
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cohorts = json.loads(
        cli(
            "retention", "--integration", "hubspot", "--cohort", "month", "--as-of", AS_OF, "--json"
        ).stdout
    )
    assert sum(c["connections"] for c in cohorts["cohorts"]) == 3
    bad = cli("retention", "--integration", "nope")
    assert bad.exit_code == 1 and "unknown integration 'nope'" in bad.stderr


def test_ttv_counts_not_yet_activated_installs(cli, world):
    d = json.loads(cli("ttv", "--as-of", AS_OF, "--json").stdout)
    slack = next(r for r in d["integrations"] if r["integration"] == "slack")
    assert set(slack) >= {"integration", "installs", "activated", "median_days", "p90_days"}
    assert (slack["installs"], slack["activated"]) == (3, 1)
    assert slack["median_days"] is None  # two of three still waiting
