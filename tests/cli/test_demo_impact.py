"""The demo's impact step tells the planted real effect from the confounded one."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from integration_signals.cli.demo_cycle import IMPACT_DEMO, demo_impact, render_impact
from integration_signals.config import load_config
from integration_signals.scoring.impact_cache import cached_impact
from integration_signals.scoring.views import integration_page
from integration_signals.store.accounts import import_account_objects
from integration_signals.store.demo import generate
from integration_signals.store.ingest import Ingestor, read_objects

CONFIG = load_config(None)
END = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_demo_tells_the_real_effect_from_the_confounded_one(engine: Engine, capsys):
    data = generate(7, 300, end=END)  # what `signals demo` builds by default
    import_account_objects(engine, data.accounts, source="demo", now=END)
    # Only the two planted integrations' events matter here (keeps the test quick).
    events = [e for e in data.events if e["integration"] in IMPACT_DEMO]
    Ingestor(engine, CONFIG, now=END).ingest(read_objects(events), source="demo")
    summary = demo_impact(engine, CONFIG, end=END)
    impact = {r["integration"]: r for r in summary["integrations"]}
    snowflake, salesforce = impact["snowflake"], impact["salesforce"]
    # Snowflake really lowers churn: the matched interval is clear of zero.
    assert snowflake["measurable"] and snowflake["lift_ci95"][1] < 0
    assert snowflake["band"] in ("strong", "critical")
    # Salesforce only looks good because big accounts adopt it: naive gap, no matched effect.
    assert salesforce["naive_lift"] < -5
    assert not salesforce["measurable"] and salesforce["band"] == "negligible"
    assert salesforce["lift_ci95"][0] < 0 < salesforce["lift_ci95"][1]
    render_impact(summary)
    shown = capsys.readouterr().out
    assert "Snowflake" in shown and "no measurable effect" in shown
    # The full analyses are kept for the dashboard's integration pages.
    with engine.connect() as conn:
        for key in IMPACT_DEMO:
            kept = cached_impact(conn, key, "churned")
            assert kept is not None and kept["source"] == "cached"
            assert kept["lift_ci95"] == impact[key]["lift_ci95"] and kept["caveat"]


def test_signals_impact_keeps_each_analysis_for_the_integration_pages(cli, engine: Engine):
    assert cli("demo", "--accounts", "40").exit_code == 0
    one = cli("impact", "zendesk", "--outcome", "renewed", "--json")
    assert one.exit_code == 0, one.stderr
    every = cli("impact", "--all", "--outcome", "renewed", "--json")
    assert every.exit_code == 0, every.stderr
    import json

    ranked = json.loads(every.stdout)["integrations"]
    with engine.connect() as conn:
        for row in ranked:
            kept = cached_impact(conn, row["integration"], "renewed")
            assert kept is not None and kept["lift"] == row["lift"], row["integration"]
    page = integration_page(engine, CONFIG, "zendesk", as_of=END, outcome="renewed")
    assert page["impact"]["source"] == "cached"


def test_signals_demo_json_carries_the_impact_step(cli):
    result = cli("demo", "--accounts", "40", "--json")
    assert result.exit_code == 0, result.stderr
    import json

    impact = json.loads(result.stdout)["impact"]
    assert [r["integration"] for r in impact["integrations"]] == list(IMPACT_DEMO)


def test_signals_demo_records_each_crms_dry_run_once(cli):
    assert cli("demo", "--accounts", "40", "--json").exit_code == 0
    import json

    runs = json.loads(cli("sync", "history", "--json").stdout)["runs"]
    assert sorted(r["destination"] for r in runs) == ["hubspot", "salesforce"]
    assert all(r["dry_run"] for r in runs)
