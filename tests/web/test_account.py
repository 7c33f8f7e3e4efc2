"""The account page: the seeds' dashboard card from `account_health`, its JSON twin, task
buttons that act exactly like Slack's, hostile names shown as text, and a 404 that
lists the nearest names."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
from markupsafe import escape
from sqlalchemy import Engine, select, update

from integration_signals.bot.tasks import post_pending_tasks
from integration_signals.config import Config, Settings
from integration_signals.scoring.run import score_accounts
from integration_signals.store.models import AccountScore, TaskEvent
from tests.bot.conftest import ACCOUNTS, add_task, task_row
from tests.fakes.slack import FakeSlack
from tests.web.conftest import NOW, USERS, Browser, seed


def _events(engine: Engine, task_id: int) -> list[tuple[str, str, str | None, str | None]]:
    with engine.connect() as conn:
        return [
            (r.actor, r.action, r.from_status, r.to_status)
            for r in conn.execute(
                select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)
            )
        ]


def test_the_account_page_shows_the_card_and_its_json_twin_is_the_view_model(
    browser: Callable[..., Browser],
) -> None:
    b = browser("viewer")
    page = b.get("/accounts/acme")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    for expected in (
        "Acme Corp",
        "enterprise",
        "$8,500",
        "dana@example.com",
        "Activation depth",
        "Growth trajectory",
        "Salesforce",
        "Zendesk",
        'data-chart="history"',
        'data-live-account="acme"',
    ):
        assert expected in text, expected
    twin = b.get("/api/accounts/acme")
    same = b.get("/accounts/acme?format=json")
    assert twin.headers["content-type"] == "application/json"
    doc, doc2 = twin.json(), same.json()
    doc.pop("as_of"), doc2.pop("as_of")
    assert doc == doc2
    assert doc["account_id"] == "acme" and doc["name"] == "Acme Corp"
    assert set(doc["components"]) == {
        "activation_depth",
        "usage_volume",
        "health_status",
        "frequency",
        "sophistication",
        "growth",
    }
    zendesk = next(i for i in doc["integrations"] if i["key"] == "zendesk")
    assert zendesk["failures_7d"] == 21 and zendesk["last_error"] == "TIMEOUT"
    assert f"<strong>{zendesk['name']}</strong>" in text and "TIMEOUT" in text
    assert doc["history"] and doc["history"][-1]["score"] == doc["score"]
    assert doc["crm"]["salesforce_id"] == "001A000001" and doc["crm_links"] == {}


def test_crm_record_links_come_from_the_bots_url_config(
    engine: Engine, config: Config, serve_web: Callable[..., str]
) -> None:
    bot = config.bot.model_copy(
        update={
            "salesforce_record_url": "https://acme.my.salesforce.com/{id}",
            "hubspot_record_url": "https://app.hubspot.com/contacts/1/company/{id}",
        }
    )
    config = config.model_copy(update={"bot": bot})
    seed(engine, config)
    b = Browser(serve_web(config), httpx.Client(timeout=30))
    b.login(USERS["viewer"])
    links = b.get("/api/accounts/acme").json()["crm_links"]
    assert links == {
        "salesforce": "https://acme.my.salesforce.com/001A000001",
        "hubspot": "https://app.hubspot.com/contacts/1/company/9001",
    }
    assert 'href="https://acme.my.salesforce.com/001A000001"' in b.get("/accounts/acme").text


def test_claim_from_the_page_acts_like_slack_and_updates_the_posted_message(
    browser: Callable[..., Browser],
    engine: Engine,
    config: Config,
    settings: Settings,
    slack: FakeSlack,
) -> None:
    task_id = add_task(engine)
    post_pending_tasks(engine, config, settings, now=NOW)
    posted = task_row(engine, task_id)
    assert posted["slack_ts"]
    b = browser("csm")
    page = b.get("/accounts/acme")
    assert f'action="/tasks/{task_id}/claim"' in page.text
    answer = b.post(
        f"/tasks/{task_id}/claim",
        {"csrf_token": b.csrf(), "next": f"/accounts/acme#task-{task_id}"},
    )
    assert (
        answer.status_code == 303 and answer.headers["location"] == f"/accounts/acme#task-{task_id}"
    )
    row = task_row(engine, task_id)
    assert (row["status"], row["claimed_by"]) == ("claimed", USERS["csm"])
    # The same history row a Slack click writes (scoring.tasks.claim), with the e-mail.
    assert _events(engine, task_id)[-1] == (USERS["csm"], "claim", "open", "claimed")
    updated = slack.wait_for(
        lambda r: r.api == "chat.update" and r.body.get("ts") == posted["slack_ts"]
    )
    assert updated[0].body["channel"] == posted["slack_channel"]
    message = slack.messages[(posted["slack_channel"], posted["slack_ts"])]
    assert USERS["csm"] in str(message["blocks"])
    shown = b.get("/accounts/acme").text
    assert f"Task {task_id} claimed." in shown and "status-claimed" in shown
    # Done, then snooze of a done task is refused and the refusal is shown.
    b.post(f"/tasks/{task_id}/done", {"csrf_token": b.csrf(), "next": "/accounts/acme"})
    assert task_row(engine, task_id)["status"] == "done"
    refused = b.post(f"/tasks/{task_id}/snooze", {"csrf_token": b.csrf(), "next": "/accounts/acme"})
    assert refused.status_code == 303
    assert "already done; nothing to snooze" in b.get("/accounts/acme").text


def test_a_task_claimed_by_someone_else_shows_the_refusal_and_stays_theirs(
    browser: Callable[..., Browser], engine: Engine
) -> None:
    task_id = add_task(engine)
    first, second = browser("csm"), browser("admin")
    first.post(f"/tasks/{task_id}/claim", {"csrf_token": first.csrf()})
    answer = second.post(
        f"/tasks/{task_id}/snooze", {"csrf_token": second.csrf(), "next": "/accounts/acme"}
    )
    assert answer.status_code == 303
    page = second.get("/accounts/acme").text
    assert f"claimed by {USERS['csm']}; only they can snooze it" in page
    assert "flash-error" in page
    row = task_row(engine, task_id)
    assert (row["status"], row["claimed_by"]) == ("claimed", USERS["csm"])
    # The notice is shown once.
    assert "only they can snooze it" not in second.get("/accounts/acme").text


def test_task_actions_answer_json_when_asked(
    browser: Callable[..., Browser], engine: Engine
) -> None:
    task_id = add_task(engine)
    b = browser("csm")
    token = b.csrf()
    ok = b.post(
        f"/tasks/{task_id}/snooze", headers={"X-CSRF-Token": token, "Accept": "application/json"}
    )
    assert ok.status_code == 200 and ok.json()["task"]["status"] == "snoozed"
    missing = b.post(
        "/tasks/999999/claim", headers={"X-CSRF-Token": token, "Accept": "application/json"}
    )
    assert missing.status_code == 409 and "does not exist" in missing.json()["refused"]


HOSTILE = "<script>alert(1)</script> \"quoted\" 'single' & ünïcödé 🚀 " + "x" * 10_000


def test_hostile_account_and_task_texts_render_as_text(
    engine: Engine, config: Config, serve_web: Callable[..., str]
) -> None:
    seed(engine, config, [*ACCOUNTS, {"account_id": "evil", "name": HOSTILE, "segment": "smb"}])
    score_accounts(engine, config, as_of=NOW, full=True)
    add_task(engine, account_id="evil", title=HOSTILE, owner="<img src=x onerror=alert(1)>")
    b = Browser(serve_web(config), httpx.Client(timeout=30))
    b.login(USERS["csm"])
    page = b.get("/accounts/evil")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "<img src=x" not in page.text
    assert str(escape(HOSTILE))[:80] in page.text
    assert "🚀" in page.text
    assert b.get("/api/accounts/evil").json()["name"] == HOSTILE


def test_an_unknown_account_is_a_404_listing_the_nearest_names(
    browser: Callable[..., Browser],
) -> None:
    b = browser("viewer")
    page = b.get("/accounts/acme-corp")
    assert page.status_code == 404
    assert "no account has id" in page.text
    assert 'href="/accounts/acme"' in page.text and "Acme Corp" in page.text
    api = b.get("/api/accounts/acme-corp")
    assert api.status_code == 404
    assert {"account_id": "acme", "name": "Acme Corp"} in api.json()["nearest"]
    nothing = b.get("/api/accounts/zzzzqqqq")
    assert nothing.status_code == 404 and nothing.json()["nearest"] == []


def test_live_answers_the_accounts_rescored_since_the_cursor(
    browser: Callable[..., Browser], engine: Engine, config: Config
) -> None:
    b = browser("viewer")
    page = b.get("/accounts/acme").text
    cursor = page.split('data-live-cursor="', 1)[1].split('"', 1)[0]
    # Nothing rescored since the page was drawn (beyond the overlap): scores stay.
    with engine.begin() as conn:
        conn.execute(update(AccountScore.__table__).values(scored_at=NOW - timedelta(minutes=10)))
    quiet = b.get("/api/live", params={"since": cursor, "accounts": "acme,globex"}).json()
    assert quiet["changes"] == []
    score_accounts(engine, config, as_of=NOW, account_ids=["acme"])
    live = b.get("/api/live", params={"since": cursor, "accounts": "acme,globex"}).json()
    assert [c["account_id"] for c in live["changes"]] == ["acme"]
    change = live["changes"][0]
    assert set(change) >= {"score", "band", "reason", "open_signals", "segments", "scored_at"}
    assert live["cursor"] >= cursor
    assert b.get("/api/live", params={"since": "yesterday"}).status_code == 400
