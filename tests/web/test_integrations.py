"""The integration pages over real HTTP: the overview's funnel table, one integration's
funnel, retention, time-to-value, impact and problem connections, their JSON twins,
hostile names and errors shown as text, and a 404 that lists the known integrations."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import escape
from sqlalchemy import Engine, update

from integration_signals.scoring.impact_cache import impact_cache_key, store_impact
from integration_signals.store.models import Connection, Integration
from tests.scoring.builders import Feed
from tests.web.conftest import NOW, Browser

HOSTILE_NAME = "<script>alert('x')</script> \"Evil\" & Co 🚀"
HOSTILE_ERROR = "<img src=x onerror=alert(1)> " + "é" * 10_000


def test_the_overview_lists_each_integration_with_its_funnel_and_its_twin_is_the_view(
    browser: Callable[..., Browser],
) -> None:
    b = browser("viewer")
    page = b.get("/integrations")
    assert page.status_code == 200, page.text
    for expected in ("Integrations", "Salesforce", "Zendesk", "Largest drop", "Time to value"):
        assert expected in page.text, expected
    assert 'href="/integrations/zendesk"' in page.text
    twin, same = b.get("/api/integrations"), b.get("/integrations?format=json")
    assert twin.headers["content-type"] == "application/json"
    doc, doc2 = twin.json(), same.json()
    doc.pop("as_of"), doc2.pop("as_of")
    assert doc == doc2 and doc["with_retention"] is True
    rows = {r["integration"]: r for r in doc["integrations"]}
    assert set(rows) == {"salesforce", "zendesk"}
    zendesk = rows["zendesk"]
    assert zendesk["installed"] == 1 and zendesk["activated"] == 1
    assert [s["stage"] for s in zendesk["stages"]][:3] == ["installed", "activated", "active now"]
    assert zendesk["retention"]["connections"] == 1 and "median_days" in zendesk["ttv"]


def test_an_integration_page_draws_funnel_retention_ttv_and_impact(
    browser: Callable[..., Browser],
) -> None:
    b = browser("csm")
    page = b.get("/integrations/zendesk")
    assert page.status_code == 200, page.text
    text = page.text
    for marker in ('data-chart="funnel"', 'data-chart="retention"', 'data-chart="impact"'):
        assert marker in text, marker
    assert "<svg" in text and "style=" not in text and "<script" not in text.split("</header>")[-1]
    assert "Time to value" in text and "Impact on churned" in text
    assert "at risk" in text  # the numbers-at-risk table under the curves
    doc = b.get("/api/integrations/zendesk").json()
    assert doc["integration"]["key"] == "zendesk"
    assert [s["stage"] for s in doc["stages"]] == [
        "installed",
        "activated",
        "active now",
        "retained 30 days",
        "retained 90 days",
    ]
    assert doc["retention"]["overall"]["connections"] == 1
    assert doc["ttv"]["activated"] == 1
    assert doc["impact"]["source"] == "computed"  # nothing cached: computed for the page
    same = b.get("/integrations/zendesk?format=json").json()
    for d in (doc, same):  # the clock moved between the two requests
        d.pop("as_of"), d["impact"].pop("as_of")
    assert doc == same


def test_a_stored_impact_analysis_is_shown_with_its_interval_verdict_and_caveat(
    engine: Engine, browser: Callable[..., Browser]
) -> None:
    doc = {
        "integration": "salesforce",
        "integration_name": "Salesforce",
        "outcome": "churned",
        "outcome_kind": "rate",
        "unit": "pts",
        "as_of": NOW,
        "adopters": 40,
        "controls": 80,
        "matched_adopters": 38,
        "adopter_mean": 0.1,
        "control_mean": 0.2,
        "lift": -10.0,
        "lift_ci95": [-18.5, -2.25],
        "naive_lift": -14.0,
        "naive_lift_ci95": [-20.0, -8.0],
        "band": "critical",
        "measurable": True,
        "verdict": "Salesforce adopters: churned rate 10.0 pts lower than matched non-adopters",
        "caveat": "Correlational, not causal: <b>read with care</b>",
        "matching": {"bootstrap": 1000},
    }
    assert store_impact(engine, [doc], now=NOW) == 1
    b = browser("viewer")
    got = b.get("/api/integrations/salesforce").json()["impact"]
    assert got["source"] == "cached" and got["lift_ci95"] == [-18.5, -2.25]
    assert got["bootstrap"] == 1000
    page = b.get("/integrations/salesforce").text
    assert "10.0 pts lower than matched non-adopters" in page
    assert "[-18.5, -2.2]" in page or "[-18.5, -2.3]" in page
    assert str(escape("<b>read with care</b>")) in page and "<b>read with care" not in page
    overview = b.get("/api/integrations").json()
    row = next(r for r in overview["integrations"] if r["integration"] == "salesforce")
    assert row["impact"]["band"] == "critical"
    assert impact_cache_key("salesforce", "churned") == "impact.salesforce.churned"


def test_hostile_integration_names_and_errors_render_as_text(
    engine: Engine, browser: Callable[..., Browser]
) -> None:
    feed = Feed(end=NOW)
    feed._n = 1_000_000  # event ids after the seed's
    feed.install("acme", "evilcrm", 20)
    feed.syncs("acme", "evilcrm", range(19, 0, -1), per_day=1, failures=1)
    feed.ingest(engine, now=NOW)
    with engine.begin() as conn:
        conn.execute(
            update(Integration.__table__)
            .where(Integration.__table__.c.key == "evilcrm")
            .values(name=HOSTILE_NAME)
        )
        conn.execute(
            update(Connection.__table__)
            .where(Connection.__table__.c.integration == "evilcrm")
            .values(state="broken", last_error=HOSTILE_ERROR)
        )
    b = browser("viewer")
    for path in ("/integrations", "/integrations/evilcrm"):
        page = b.get(path)
        assert page.status_code == 200, page.text
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(" in page.text and "🚀" in page.text
    detail = b.get("/integrations/evilcrm").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail
    assert b.get("/api/integrations/evilcrm").json()["broken_connections"][0]["last_error"] == (
        HOSTILE_ERROR
    )


def test_an_unknown_integration_is_a_404_listing_the_known_ones(
    browser: Callable[..., Browser],
) -> None:
    b = browser("viewer")
    page = b.get("/integrations/nosuch")
    assert page.status_code == 404
    assert "no integration has key" in page.text and 'href="/integrations/zendesk"' in page.text
    api = b.get("/api/integrations/nosuch")
    assert api.status_code == 404
    assert {"key": "zendesk", "name": "Zendesk"} in api.json()["known_integrations"]
    assert b.get("/integrations/zendesk?cohort=year").status_code == 400


def test_the_integration_pages_need_a_session(browser: Callable[..., Browser]) -> None:
    b = browser()
    assert b.get("/integrations").status_code == 303
    assert b.get("/api/integrations/zendesk").status_code == 401
