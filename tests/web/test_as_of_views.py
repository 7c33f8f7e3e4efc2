"""One answer per moment for tasks and the web: at several T, `signals tasks --as-of T`,
`signals health X --as-of T`, `/api/tasks?as_of=T`, `/api/accounts/X?as_of=T` and
`/api/portfolio?as_of=T` agree on open episodes and on each task's status as it was at
T (rebuilt from `task_events`), over real HTTP; a bad `as_of` is a 400 and a page of
the past says so and does not poll."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import select

from integration_signals.config import load_config
from integration_signals.scoring import tasks as task_ops
from integration_signals.scoring.replay import day_end, replay
from integration_signals.store.ingest import Ingestor, read_objects
from integration_signals.store.models import AccountScore, ScoreHistory, Signal, Task
from integration_signals.store.sql import as_utc
from integration_signals.web.auth import add_user
from tests.scoring import replay_world as world
from tests.scoring.builders import CONFIG, import_accounts
from tests.scoring.test_as_of import ACCOUNTS, _expected_open
from tests.web.conftest import PASSWORD

LAST = world.START + timedelta(days=world.DAYS - 1)


@pytest.fixture
def story(engine):  # type: ignore[no-untyped-def]
    """The replay world, plus one live task claimed a day after it was created and done
    two days later, by a person."""
    import_accounts(engine, world.accounts())
    for events in world.events_by_day().values():
        Ingestor(engine, CONFIG, now=day_end(LAST)).ingest(read_objects(events), source="b")
    replay(engine, CONFIG, start=world.START, end=LAST)
    t = Task.__table__
    with engine.connect() as conn:
        live = conn.execute(
            select(t.c.id, t.c.created_at).where(t.c.status == "open").order_by(t.c.created_at)
        ).first()
    assert live is not None, "the replay world leaves no live task"
    created = as_utc(live.created_at)
    claimed, finished = created + timedelta(days=1), created + timedelta(days=3)
    task_ops.claim(engine, live.id, by="dana@example.com", now=claimed)
    task_ops.done(engine, live.id, by="dana@example.com", now=finished)
    add_user(engine, "dana@example.com", role="csm", password=PASSWORD, now=day_end(LAST))
    return engine, live.id, created, claimed, finished


def _moments(created, claimed, finished):  # type: ignore[no-untyped-def]
    return {
        "before": created - timedelta(hours=1),
        "created": created + timedelta(hours=1),
        "claimed": claimed + timedelta(hours=1),
        "done": finished + timedelta(hours=1),
        "mid": day_end(world.START + timedelta(days=24)),
    }


def test_cli_health_and_web_agree_on_tasks_and_episodes_at_each_moment(cli, story, serve_web):  # type: ignore[no-untyped-def]
    engine, task_id, created, claimed, finished = story
    url = serve_web(load_config(None))
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    answer = client.post("/login", data={"email": "dana@example.com", "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    expected_status = {"before": None, "created": "open", "claimed": "claimed", "done": "done"}
    try:
        for name, at in _moments(created, claimed, finished).items():
            when = at.isoformat()
            listed = json.loads(cli("tasks", "--as-of", when, "--json").stdout)["tasks"]
            cli_status = {t["id"]: t["status"] for t in listed}
            for t in listed:
                assert as_utc_iso(t["created_at"]) <= at
            if name in expected_status:
                assert cli_status.get(task_id) == expected_status[name], name
                mine = next((t for t in listed if t["id"] == task_id), None)
                if name == "claimed":
                    assert mine["claimed_by"] == "dana@example.com"
                if name == "created":
                    assert mine["claimed_by"] is None

            queue = client.get("/api/tasks", params={"as_of": when})
            assert queue.status_code == 200, queue.text
            web_status = {
                task["id"]: group["status"]
                for owner in queue.json()["owners"]
                for group in owner["statuses"]
                for task in group["tasks"]
            }
            not_done = {i: s for i, s in cli_status.items() if s != "done"}
            assert web_status == not_done, name
            done_q = client.get("/api/tasks", params={"as_of": when, "status": "done"}).json()
            done_ids = {
                t["id"] for o in done_q["owners"] for g in o["statuses"] for t in g["tasks"]
            }
            assert done_ids == {i for i, s in cli_status.items() if s == "done"}, name

            expected = _expected_open(engine, at)
            portfolio = client.get("/api/portfolio", params={"as_of": when}).json()
            counts = {r["account_id"]: r["open_signals"] for r in portfolio["rows"]}
            for account in ACCOUNTS:
                card = json.loads(cli("health", account, "--as-of", when, "--json").stdout)
                page = client.get(f"/api/accounts/{account}", params={"as_of": when})
                assert page.status_code == 200, page.text
                web = page.json()
                mine = {i for i, a in expected.items() if a == account}
                assert {s["id"] for s in card["signals"]} == mine, (name, account)
                assert {s["id"] for s in web["signals"]} == mine, (name, account)
                assert counts.get(account, 0) == len(mine), (name, account)
                open_now = {
                    i: s
                    for t in listed
                    if t["account_id"] == account
                    for i, s in [(t["id"], t["status"])]
                    if s != "done"
                }
                assert {t["id"]: t["status"] for t in card["tasks"]} == open_now, (name, account)
                assert {t["id"]: t["status"] for t in web["tasks"]} == open_now, (name, account)
    finally:
        client.close()


def as_utc_iso(text):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return as_utc(datetime.fromisoformat(text))


def test_a_page_of_the_past_has_a_banner_no_polling_and_a_bad_as_of_is_400(story, serve_web):  # type: ignore[no-untyped-def]
    url = serve_web(load_config(None))
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        client.post("/login", data={"email": "dana@example.com", "password": PASSWORD})
        day = (world.START + timedelta(days=20)).isoformat()
        for path in ("/", "/tasks", "/accounts/deg"):
            past = client.get(
                path,
                params={"as_of": day, "status": "open"} if path == "/tasks" else {"as_of": day},
            )
            assert past.status_code == 200, (path, past.text[:300])
            assert "as-of-banner" in past.text and "Back to now" in past.text
            assert "data-live-poll" not in past.text
            now = client.get(path)
            assert now.status_code == 200 and "as-of-banner" not in now.text
            assert "data-live-poll" in now.text
            for bad in ("yesterday", "2026-13-45", "12:00"):
                answer = client.get(path, params={"as_of": bad})
                assert answer.status_code == 400, (path, bad)
        back = client.get("/tasks", params={"as_of": day, "status": "open"}).text
        assert 'href="/tasks?status=open"' in back
        api = client.get("/api/portfolio", params={"as_of": day + "T12:00:00Z"})
        assert api.status_code == 200
        assert api.json()["as_of"].startswith(day + "T12:00:00")
        assert client.get("/api/tasks", params={"as_of": "nope"}).status_code == 400


class _Page(HTMLParser):
    """Every link (href and its text) and form (method, action, hidden fields) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[list[str]] = []
        self.forms: list[dict[str, Any]] = []
        self._in_link = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "href" in a:
            self.links.append([a["href"], ""])
            self._in_link = True
        elif tag == "form":
            self.forms.append({"method": a.get("method", "get"), "action": a.get("action", "")})
            self.forms[-1]["hidden"] = {}
        elif tag == "input" and a.get("type") == "hidden" and self.forms:
            self.forms[-1]["hidden"][a.get("name")] = a.get("value")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._in_link = False

    def handle_data(self, data: str) -> None:
        if self._in_link:
            self.links[-1][1] += data


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


# Pages that show the present only (and the session's own pages): their links carry no moment.
PRESENT_ONLY = ("/static/", "/login", "/logout", "/syncs", "/ops")


def test_a_page_of_the_past_keeps_every_link_in_its_moment_and_offers_no_action(story, serve_web):  # type: ignore[no-untyped-def]
    """Account, integration and task links, sorting, paging, filter forms and JSON links
    all carry the page's as_of; task forms give way to a "viewing <date>; back to now"
    note; the same pages now still offer the actions; the JSON twins keep their keys."""
    engine, task_id, created, claimed, finished = story
    moment = (created + timedelta(hours=1)).isoformat()  # the live task is open then
    url = serve_web(load_config(None))
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        client.post("/login", data={"email": "dana@example.com", "password": PASSWORD})
        paths = [
            "/?page_size=1",  # pagination links
            "/?sort=mrr&order=desc&band=healthy",
            "/tasks",
            "/tasks?status=open&owner=dana%40example.com",
            "/accounts/deg",
            "/integrations",
            "/integrations/zendesk",
            "/accounts/no-such-account",  # the 404 page's suggestions
        ]
        seen_pages = 0
        for path in paths:
            sep = "&" if "?" in path else "?"
            past = client.get(f"{path}{sep}{urlencode({'as_of': moment})}")
            assert past.status_code in (200, 404), (path, past.text[:300])
            page = _parse(past.text)
            internal = [
                (href, text)
                for href, text in page.links
                if (href.startswith("/") and not href.startswith("//")) or href.startswith("?")
            ]
            assert internal, path
            for href, text in internal:
                query = parse_qs(urlsplit(href).query)
                if href.startswith(PRESENT_ONLY) or text.strip().lower() == "back to now":
                    assert "as_of" not in query, (path, href)
                    continue
                assert query.get("as_of") == [moment], (path, href, text)
            assert any(text.strip() == "Back to now" for _, text in page.links), path
            for form in page.forms:
                if form["method"].lower() == "get":
                    assert form["hidden"].get("as_of") == moment, (path, form)
                else:
                    assert form["action"] == "/logout", (path, form)  # no action on the past
            seen_pages += 1
        assert seen_pages == len(paths)

        tasks_then = client.get("/tasks", params={"as_of": moment}).text
        assert f'id="task-{task_id}"' in tasks_then and "back to now" in tasks_then
        assert "viewing " in tasks_then
        account_id = next(
            t["account_id"]
            for o in client.get("/api/tasks", params={"as_of": moment}).json()["owners"]
            for g in o["statuses"]
            for t in g["tasks"]
            if t["id"] == task_id
        )
        account_then = client.get(f"/accounts/{account_id}", params={"as_of": moment}).text
        assert f'id="task-{task_id}"' in account_then and "back to now" in account_then
        assert f'action="/tasks/{task_id}/claim"' not in account_then

        # The same pages now: the forms are there (the task is done now: take another).
        with engine.begin() as conn:
            conn.execute(Task.__table__.update().where(Task.id == task_id).values(status="open"))
        for path in ("/tasks", f"/accounts/{account_id}"):
            now_page = client.get(path).text
            assert f'action="/tasks/{task_id}/done"' in now_page, path
            assert "back to now" not in now_page

        for api in (
            "/api/portfolio",
            "/api/tasks",
            f"/api/accounts/{account_id}",
            "/api/integrations",
            "/api/integrations/zendesk",
        ):
            then = client.get(api, params={"as_of": moment}).json()
            now = client.get(api).json()
            assert set(then) == set(now), api


def _band_then(engine, account_id, at):  # type: ignore[no-untyped-def]
    """The newest score_history band at or before ``at`` (None before the first)."""
    h = ScoreHistory.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(h.c.as_of, h.c.band).where(h.c.account_id == account_id).order_by(h.c.as_of)
        ).all()
    band = None
    for row in rows:
        if as_utc(row.as_of) <= at:
            band = row.band
    return band


def test_tasks_of_a_moment_show_the_band_of_that_moment_in_the_cli_and_the_web(
    cli, story, serve_web
):  # type: ignore[no-untyped-def]
    """`signals tasks --as-of T` and `/api/tasks?as_of=T` give each task's account the
    band it had at T (score_history), also for an account whose band changed after T."""
    engine, task_id, created, claimed, finished = story
    with engine.connect() as conn:
        current = dict(conn.execute(select(AccountScore.account_id, AccountScore.band)).all())
    url = serve_web(load_config(None))
    changed = 0
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        client.post("/login", data={"email": "dana@example.com", "password": PASSWORD})
        for d in range(2, world.DAYS, 6):
            at = day_end(world.START + timedelta(days=d)) - timedelta(hours=1)
            when = at.isoformat()
            listed = json.loads(cli("tasks", "--as-of", when, "--json").stdout)["tasks"]
            web = {
                t["id"]: t["account_band"]
                for status in ("open", "claimed", "snoozed", "done")
                for o in client.get("/api/tasks", params={"as_of": when, "status": status}).json()[
                    "owners"
                ]
                for g in o["statuses"]
                for t in g["tasks"]
            }
            for t in listed:
                expected = _band_then(engine, t["account_id"], at)
                assert t["account_band"] == expected, (when, t["account_id"])
                assert web[t["id"]] == expected, (when, t["account_id"])
                changed += expected != current[t["account_id"]]
    assert changed, "the story has no task of an account whose band changed after T"


def _scores_then(engine, at):  # type: ignore[no-untyped-def]
    """Account -> (score, band, stage) of its newest score_history row at or before
    ``at`` (absent before the first), read in Python: the oracle for the portfolio."""
    h = ScoreHistory.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(h.c.account_id, h.c.as_of, h.c.score, h.c.band, h.c.stage).order_by(
                h.c.as_of, h.c.id
            )
        ).all()
    out = {}
    for row in rows:
        if as_utc(row.as_of) <= at:
            out[row.account_id] = (row.score, row.band, row.stage)
    return out


def _segments_then(engine, at, band, stage, account):  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from integration_signals.scoring.signals import segments_for

    s = Signal.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.c.account_id, s.c.kind, s.c.fired_at, s.c.resolved_at).where(
                s.c.account_id == account
            )
        ).all()
    kinds = [
        r.kind
        for r in rows
        if as_utc(r.fired_at) <= at and (r.resolved_at is None or as_utc(r.resolved_at) > at)
    ]
    acct = SimpleNamespace(band=band, stage=stage, tenure_days=None)
    return segments_for(acct, kinds, CONFIG.signals)


def test_the_portfolio_of_a_moment_shows_scores_bands_segments_and_tiles_of_that_moment(
    cli, story, serve_web
):  # type: ignore[no-untyped-def]
    """`/?as_of=T` and `/api/portfolio?as_of=T`: each account's score, band and CRM
    segments are those it had at T (its newest score_history row at or before T and the
    episodes open then), also for an account whose band changed after T; the band tiles,
    the band and CRM-segment filters and the band sort count the same; and
    `signals health X --as-of T` and `signals score --as-of T --json` (the read-only
    what-if) agree with the row at the end of each day."""
    engine = story[0]
    with engine.connect() as conn:
        current = dict(conn.execute(select(AccountScore.account_id, AccountScore.band)).all())
    url = serve_web(load_config(None))
    changed = 0
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        client.post("/login", data={"email": "dana@example.com", "password": PASSWORD})
        now = client.get("/api/portfolio").json()
        assert now["past"] is False
        for d in range(1, world.DAYS, 8):
            end = day_end(world.START + timedelta(days=d))
            for at in (end, end - timedelta(hours=6)):
                when = at.isoformat()
                then = _scores_then(engine, at)
                view = client.get("/api/portfolio", params={"as_of": when}).json()
                assert view["past"] is True, when
                rows = {r["account_id"]: r for r in view["rows"]}
                assert set(rows) == set(ACCOUNTS), when
                bands = dict.fromkeys(("at_risk", "watch", "healthy", "unscored"), 0)
                for account in ACCOUNTS:
                    score, band, stage = then.get(account, (None, None, None))
                    row = rows[account]
                    assert (row["score"], row["band"], row["stage"]) == (score, band, stage), (
                        when,
                        account,
                    )
                    expected_segments = (
                        [] if band is None else _segments_then(engine, at, band, stage, account)
                    )
                    assert row["segments"] == expected_segments, (when, account)
                    bands[band or "unscored"] += 1
                    changed += band != current[account]
                    if row["scored_as_of"] is not None:
                        assert as_utc_iso(row["scored_as_of"]) <= at
                    for point in row["trend_30d"]:
                        assert as_utc_iso(point["at"]) <= at
                assert view["tiles"]["bands"] == bands, when
                for band, n in bands.items():
                    only = client.get("/api/portfolio", params={"as_of": when, "band": band})
                    assert only.json()["total"] == n, (when, band)
                    assert {r["band"] or "unscored" for r in only.json()["rows"]} <= {band}
                at_risk = {a for a, r in rows.items() if "at-risk" in r["segments"]}
                filtered = client.get(
                    "/api/portfolio", params={"as_of": when, "crm_segment": "at-risk"}
                ).json()
                assert {r["account_id"] for r in filtered["rows"]} == at_risk, when
                assert view["tiles"]["at_risk_accounts"] == len(at_risk), when
                assert view["tiles"]["at_risk_mrr"] == 5000 * len(at_risk), when
                expansion = {a for a, r in rows.items() if "expansion-ready" in r["segments"]}
                assert view["tiles"]["expansion_ready_accounts"] == len(expansion), when
                expanding = client.get(
                    "/api/portfolio", params={"as_of": when, "crm_segment": "expansion-ready"}
                ).json()
                assert {r["account_id"] for r in expanding["rows"]} == expansion, when
                by_band = client.get(
                    "/api/portfolio", params={"as_of": when, "sort": "band"}
                ).json()["rows"]
                order = {"at_risk": 0, "watch": 1, "healthy": 2}
                ranks = [order.get(r["band"], 3) for r in by_band]
                assert ranks == sorted(ranks), when

                html = client.get("/", params={"as_of": when}).text
                for account in ACCOUNTS:
                    band = then.get(account, (None, None, None))[1]
                    cell = re.search(rf'<tr data-live-account="{account}".*?</tr>', html, re.DOTALL)
                    assert cell is not None, (when, account)
                    if band is not None:
                        assert f"band-{band}" in cell.group(0), (when, account)

                if at == end:
                    score_doc = json.loads(cli("score", "--as-of", when, "--json").stdout)
                    what_if = {a["account_id"]: a for a in score_doc["accounts"]}
                    for account in ACCOUNTS:
                        row = rows[account]
                        card = json.loads(cli("health", account, "--as-of", when, "--json").stdout)
                        if row["score"] is None:
                            continue
                        assert (card["score"], card["band"]) == (row["score"], row["band"]), (
                            when,
                            account,
                        )
                        assert card["segments"] == row["segments"], (when, account)
                        mine = what_if[account]
                        assert (mine["score"], mine["band"]) == (row["score"], row["band"])
                        assert mine["segments"] == row["segments"], (when, account)
    assert changed, "the story has no account whose band changed after a moment shown"
