"""The task queue (`/tasks`) and operations (`/ops`) pages over real HTTP: the view models
`tasks_queue` and `ops_view` as HTML and JSON, task actions from the queue (CSRF, roles,
back to the queue), and the stale-feed alarm."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any

from markupsafe import escape
from sqlalchemy import Engine, insert

from integration_signals.config import Config
from integration_signals.scoring.signals import evaluate_signals
from integration_signals.store.models import JobRun
from tests.bot.conftest import add_task as add_bot_task
from tests.bot.conftest import task_row
from tests.web.conftest import NOW, USERS, Browser


def add_task(engine: Engine, **values: Any) -> int:
    """A task for Dana on Acme, due in 4 hours from now (the bot's helper, our clock)."""
    return add_bot_task(engine, **{"due_at": NOW + timedelta(hours=4), **values})


# ---------------------------------------------------------------- tasks


def test_the_queue_groups_tasks_by_owner_and_status_and_its_twin_is_the_view(
    browser: Callable[..., Browser], engine: Engine
) -> None:
    overdue = add_task(engine, due_at=NOW - timedelta(days=2), title="Call Acme about Zendesk")
    claimed = add_task(
        engine, status="claimed", claimed_by="dana@example.com", title="Fix Globex auth"
    )
    other = add_task(engine, owner="sam@example.com", account_id="globex", title="Check Globex")
    gone = add_task(engine, status="done", title="Already handled")
    b = browser("viewer")
    page = b.get("/tasks")
    assert page.status_code == 200
    text = page.text
    api, same = b.get("/api/tasks").json(), b.get("/tasks?format=json").json()
    api.pop("as_of"), same.pop("as_of")
    assert api == same
    owners = [g["owner"] for g in api["owners"]]
    assert owners == ["dana@example.com", "sam@example.com"]
    dana = api["owners"][0]
    assert [s["status"] for s in dana["statuses"]] == ["open", "claimed"]
    assert api["counts"]["done"] == 1 and api["overdue"] == 1
    # Owners in that order, each task with its account link and due / overdue.
    assert re.findall(r'data-owner="([^"]*)"', text) == owners
    for task_id in (overdue, claimed, other):
        assert f'id="task-{task_id}"' in text
    assert f'id="task-{gone}"' not in text, "done tasks are hidden unless asked for"
    item = text.split(f'id="task-{overdue}"', 1)[1].split("</li>", 1)[0]
    assert 'href="/accounts/acme"' in item and "Acme Corp" in item and "overdue 2 d ago" in item
    assert 'href="/accounts/globex"' in text
    # A viewer sees the queue without the action forms.
    assert 'action="/tasks/' not in text
    assert 'aria-current="page">Tasks</a>' in text


def test_owner_and_status_filters_go_through_the_form(
    browser: Callable[..., Browser], engine: Engine
) -> None:
    mine = add_task(engine)
    theirs = add_task(engine, owner="sam@example.com", account_id="globex")
    snoozed = add_task(engine, status="snoozed", snoozed_until=NOW + timedelta(days=3))
    done = add_task(engine, status="done")
    b = browser("csm")
    page = b.get("/tasks").text
    assert 'name="owner"' in page and 'name="status"' in page
    only_sam = b.get("/tasks", params={"owner": "sam@example.com"}).text
    assert f'id="task-{theirs}"' in only_sam and f'id="task-{mine}"' not in only_sam
    assert 'value="sam@example.com"' in only_sam
    only_snoozed = b.get("/tasks", params={"status": "snoozed"}).text
    assert f'id="task-{snoozed}"' in only_snoozed and f'id="task-{mine}"' not in only_snoozed
    assert '<option value="snoozed" selected>' in only_snoozed
    only_done = b.get("/tasks", params={"status": "done"}).text
    assert (
        f'id="task-{done}"' in only_done
        and 'action="/tasks/' not in only_done.split(f'id="task-{done}"', 1)[1].split("</li>", 1)[0]
    )
    # "My tasks" is the signed-in person's e-mail as the owner filter.
    my = re.search(r'href="(\?[^"]*)">My tasks', page)
    assert my and "owner=dana%40example.com" in unescape(my.group(1))
    nobody = b.get("/tasks", params={"owner": "<script>alert(1)</script>"})
    assert nobody.status_code == 200 and "No tasks here" in nobody.text
    assert "<script>alert(1)</script>" not in nobody.text
    assert str(escape("<script>alert(1)</script>")) in nobody.text
    bad = b.get("/tasks", params={"status": "lost"})
    assert bad.status_code == 400 and "status" in bad.text
    assert b.get("/api/tasks", params={"status": "lost"}).status_code == 400


def test_claim_done_and_snooze_from_the_queue_come_back_to_it(
    browser: Callable[..., Browser], engine: Engine
) -> None:
    task_id = add_task(engine)
    b = browser("csm")
    page = b.get("/tasks", params={"owner": USERS["csm"]}).text
    item = page.split(f'id="task-{task_id}"', 1)[1].split("</li>", 1)[0]
    for action in ("claim", "done", "snooze"):
        assert f'action="/tasks/{task_id}/{action}"' in item
    token = re.search(r'name="csrf_token" value="([^"]+)"', item).group(1)
    back = unescape(re.search(r'name="next" value="([^"]+)"', item).group(1))
    assert back == f"/tasks?owner=dana%40example.com#task-{task_id}"
    claimed = b.post(f"/tasks/{task_id}/claim", {"csrf_token": token, "next": back})
    assert claimed.status_code == 303 and claimed.headers["location"] == back
    assert (task_row(engine, task_id)["status"], task_row(engine, task_id)["claimed_by"]) == (
        "claimed",
        USERS["csm"],
    )
    shown = b.get("/tasks", params={"owner": USERS["csm"]}).text
    assert f"Task {task_id} claimed." in shown
    assert "Claimed" in shown and "status-claimed" in shown
    b.post(f"/tasks/{task_id}/snooze", {"csrf_token": token, "next": back})
    assert task_row(engine, task_id)["status"] == "snoozed"
    b.post(f"/tasks/{task_id}/done", {"csrf_token": token, "next": back})
    assert task_row(engine, task_id)["status"] == "done"
    assert f'id="task-{task_id}"' not in b.get("/tasks").text


def test_queue_actions_need_the_csrf_token_and_a_role_that_may_act(
    browser: Callable[..., Browser], engine: Engine
) -> None:
    task_id = add_task(engine)
    csm = browser("csm")
    forged = csm.post(f"/tasks/{task_id}/claim", {"csrf_token": "nope", "next": "/tasks"})
    assert forged.status_code == 403
    missing = csm.post(f"/tasks/{task_id}/done", {"next": "/tasks"})
    assert missing.status_code == 403
    viewer = browser("viewer")
    token = viewer.csrf("/tasks")
    refused = viewer.post(f"/tasks/{task_id}/claim", {"csrf_token": token, "next": "/tasks"})
    assert refused.status_code == 403 and "may not act on tasks" in refused.text
    assert task_row(engine, task_id)["status"] == "open"


# ---------------------------------------------------------------- ops


def test_ops_shows_the_stale_feed_alarm_when_no_events_arrive(
    browser: Callable[..., Browser], engine: Engine, config: Config
) -> None:
    b = browser("viewer")
    fresh = b.get("/ops")
    assert fresh.status_code == 200
    assert "The event feed is stale" not in fresh.text and 'role="alert"' not in fresh.text
    assert b.get("/api/ops").json()["feed"]["stale"] is False
    # Scoring's guard, evaluated well past the threshold without any event, opens the
    # alarm (a feed_stale signal).
    later = NOW + timedelta(hours=config.signals.feed_stale_hours + 3)
    report = evaluate_signals(engine, config, as_of=later)
    assert report.feed_stale
    page = b.get("/ops")
    assert 'role="alert"' in page.text and "The event feed is stale" in page.text
    assert "CRM syncs hold their writes" in page.text
    doc = b.get("/api/ops").json()
    assert doc["feed"]["stale"] is True and doc["feed"]["alarm"]["signal_id"]
    assert b.get("/ops?format=json").json()["feed"] == doc["feed"]
    # The alarm comes before everything else on the page.
    assert page.text.index("The event feed is stale") < page.text.index("Scheduled jobs")


def test_ops_lists_jobs_with_state_and_failures_in_a_row(
    browser: Callable[..., Browser], engine: Engine
) -> None:
    rows = [
        ("score", NOW - timedelta(minutes=45), "ok", None),
        ("score", NOW - timedelta(minutes=30), "failed", "OperationalError: <db> gone"),
        ("score", NOW - timedelta(minutes=15), "failed", "OperationalError: <db> gone"),
        ("maintenance.prune", NOW - timedelta(hours=3), "ok", None),
    ]
    with engine.begin() as conn:
        for job_id, at, status, error in rows:
            conn.execute(
                insert(JobRun.__table__).values(
                    job_id=job_id,
                    scheduled_at=at,
                    started_at=at,
                    finished_at=at + timedelta(seconds=2),
                    status=status,
                    error=error,
                    host="web-1",
                )
            )
    b = browser("viewer")
    page = b.get("/ops").text
    doc = b.get("/api/ops").json()
    score = next(j for j in doc["jobs"] if j["job_id"] == "score")
    assert score["failures_in_a_row"] == 2 and score["state"] == "failed"
    assert doc["failing_jobs"] == ["score"]
    row = page.split("<strong>score</strong>", 1)[1].split("</tr>", 1)[0]
    assert "job-failed" in row and '<td class="num bad">2</td>' in row
    assert "OperationalError: &lt;db&gt; gone" in row and "<db>" not in row
    assert row.count('class="run job-') == 3
    prune = page.split("<strong>maintenance.prune</strong>", 1)[1].split("</tr>", 1)[0]
    assert "job-ok" in prune
    assert "Failing jobs" in page and "This process runs no scheduler" in page
    assert "Quarantined lines" in page and "Last scoring run" in page
