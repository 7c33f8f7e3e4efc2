"""One answer per moment for tasks and the web: at several T, `signals tasks --as-of T`,
`signals health X --as-of T`, `/api/tasks?as_of=T`, `/api/accounts/X?as_of=T` and
`/api/portfolio?as_of=T` agree on open episodes and on each task's status as it was at
T (rebuilt from `task_events`), over real HTTP; a bad `as_of` is a 400 and a page of
the past says so and does not poll."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from integration_signals.config import load_config
from integration_signals.scoring import tasks as task_ops
from integration_signals.scoring.replay import day_end, replay
from integration_signals.store.ingest import Ingestor, read_objects
from integration_signals.store.models import Task
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
