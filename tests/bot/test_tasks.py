"""Playbook tasks in Slack: posted once, buttons that change the store and the message,
double clicks and stale messages harmless, reminders once, one digest a day."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from integration_signals.bot.tasks import post_pending_tasks, send_digest, send_reminders
from integration_signals.config import Config, Settings, load_config
from integration_signals.store.models import KeyValue, Signal, TaskEvent
from tests.bot.conftest import NOW, SlackSender, add_task, task_row
from tests.fakes.slack import FakeSlack


def _buttons(message: dict) -> list[str]:
    return [
        el["action_id"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for el in block["elements"]
    ]


def _text(message: dict) -> str:
    out = []
    for block in message["blocks"]:
        if "text" in block:
            out.append(block["text"]["text"])
        for el in block.get("elements", []) + block.get("fields", []):
            if "text" in el and isinstance(el["text"], str):
                out.append(el["text"])
    return "\n".join(out)


def _events(engine: Engine, task_id: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (r.actor, r.action)
            for r in conn.execute(
                select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)
            )
        ]


def test_each_task_is_posted_once_with_its_buttons(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, accounts
):
    first = add_task(engine)
    second = add_task(engine, title="Acme activated a 3rd integration", owner="U0SALES")
    add_task(engine, title="Done already", status="done")
    report = post_pending_tasks(engine, config, settings, now=NOW)
    again = post_pending_tasks(engine, config, settings, now=NOW + timedelta(minutes=1))
    assert (report.sent, again.sent) == (2, 0)
    posts = slack.calls("chat.postMessage")
    assert len(posts) == 2 and {p.body["channel"] for p in posts} == {"C0TASKS"}
    for task_id in (first, second):
        row = task_row(engine, task_id)
        assert row["slack_channel"] == "C0TASKS" and row["slack_ts"] and row["posted_at"] == NOW
        message = slack.messages[(row["slack_channel"], row["slack_ts"])]
        assert _buttons(message) == ["task_claim", "task_done", "task_snooze"]
    text = _text(slack.messages[("C0TASKS", task_row(engine, first)["slack_ts"])])
    assert "Zendesk sync success at 72%" in text and "Acme Corp" in text
    assert "<@U0DANA>" in text  # the e-mail owner resolved with users.lookupByEmail


def test_two_processes_posting_at_once_post_each_task_once(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, accounts
):
    ids = [add_task(engine, title=f"task {i}") for i in range(8)]
    slack.latency = 0.02
    threads = [
        threading.Thread(
            target=post_pending_tasks, args=(engine, config, settings), kwargs={"now": NOW}
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    posts = slack.calls("chat.postMessage")
    assert sorted(p.body["text"] for p in posts) == sorted(
        f"Task: task {i} (open)" for i in range(8)
    )
    assert all(task_row(engine, i)["slack_ts"] for i in ids)


def test_a_failed_post_is_retried_by_a_run_after_its_backoff(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, accounts
):
    task_id = add_task(engine)
    slack.fail_next["chat.postMessage"] = "channel_not_found"
    report = post_pending_tasks(engine, config, settings, now=NOW)
    assert (report.sent, report.failed) == (0, 1)
    assert "channel_not_found" in report.errors[0]
    assert task_row(engine, task_id)["posted_at"] is None
    assert post_pending_tasks(engine, config, settings, now=NOW).held_back == 1  # its backoff
    assert post_pending_tasks(engine, config, settings, now=NOW + timedelta(minutes=1)).sent == 1


def test_owner_dm_mode_opens_a_dm_and_falls_back_to_the_channel(
    engine: Engine, settings: Settings, slack: FakeSlack, accounts
):
    config = load_config(None).model_copy(
        update={"bot": load_config(None).bot.model_copy(update={"tasks_to": "owner"})}
    )
    known = add_task(engine, owner="Dana@Example.com".lower())
    unknown = add_task(engine, owner="nobody@example.com")
    assert post_pending_tasks(engine, config, settings, now=NOW).sent == 2
    assert [c.body["email"] for c in slack.calls("users.lookupByEmail")] == [
        "dana@example.com",
        "nobody@example.com",
    ]
    assert slack.calls("conversations.open")[0].body["users"] == "U0DANA"
    assert task_row(engine, known)["slack_channel"] == "D0DANA"
    assert task_row(engine, unknown)["slack_channel"] == "C0TASKS"


def test_claim_then_done_changes_the_store_and_the_message(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, bot: SlackSender, accounts
):
    task_id = add_task(engine)
    post_pending_tasks(engine, config, settings, now=NOW)
    row = task_row(engine, task_id)
    where = {"channel": row["slack_channel"], "message_ts": row["slack_ts"]}

    assert bot.click("task_claim", str(task_id), user="W0ALEX", **where).status_code == 200
    slack.wait_for(lambda r: r.api == "chat.update")
    row = task_row(engine, task_id)
    assert (row["status"], row["claimed_by"]) == ("claimed", "W0ALEX")
    message = slack.messages[(where["channel"], where["message_ts"])]
    assert "Claimed by <@W0ALEX>" in _text(message)
    assert _buttons(message) == ["task_done", "task_snooze"]

    assert bot.click("task_done", str(task_id), user="W0ALEX", **where).status_code == 200
    slack.wait_for(lambda r: r.api == "chat.update", count=2)
    assert task_row(engine, task_id)["status"] == "done"
    message = slack.messages[(where["channel"], where["message_ts"])]
    assert "Done by <@W0ALEX>" in _text(message)
    assert _buttons(message) == []
    assert [a for _, a in _events(engine, task_id) if a != "posted"] == ["claim", "done"]
    assert ("W0ALEX", "claim") in _events(engine, task_id)


def test_a_double_click_claims_once(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, bot: SlackSender, accounts
):
    task_id = add_task(engine)
    post_pending_tasks(engine, config, settings, now=NOW)
    row = task_row(engine, task_id)
    where = {"channel": row["slack_channel"], "message_ts": row["slack_ts"]}
    bodies = [bot.action_body("task_claim", str(task_id), **where) for _ in range(2)]
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda b=b: results.append(bot.post(b).status_code)) for b in bodies
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200, 200]
    slack.wait_for(lambda r: r.api == "chat.update", count=2)
    assert task_row(engine, task_id)["claimed_by"] == "W0ALEX"
    assert [a for _, a in _events(engine, task_id)].count("claim") == 1
    assert slack.responses(count=0) == []  # nobody was told they were refused


def test_a_click_on_a_stale_message_is_refused_politely_and_refreshes_it(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, bot: SlackSender, accounts
):
    task_id = add_task(engine)
    post_pending_tasks(engine, config, settings, now=NOW)
    row = task_row(engine, task_id)
    where = {"channel": row["slack_channel"], "message_ts": row["slack_ts"]}
    bot.click("task_claim", str(task_id), user="W0ALEX", **where)
    slack.wait_for(lambda r: r.api == "chat.update")
    bot.click("task_claim", str(task_id), user="W0BOB", **where)  # Bob saw an old message
    (answer,) = slack.responses()
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert "already claimed by W0ALEX" in answer["text"]
    assert "already claimed by <@W0ALEX>" in answer["blocks"][0]["text"]["text"]
    assert task_row(engine, task_id)["claimed_by"] == "W0ALEX"
    slack.wait_for(lambda r: r.api == "chat.update", count=2)


def test_snooze_hides_the_task_for_seven_days(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, bot: SlackSender, accounts
):
    task_id = add_task(engine)
    post_pending_tasks(engine, config, settings, now=NOW)
    row = task_row(engine, task_id)
    bot.click("task_snooze", str(task_id), channel=row["slack_channel"], message_ts=row["slack_ts"])
    slack.wait_for(lambda r: r.api == "chat.update")
    row = task_row(engine, task_id)
    assert row["status"] == "snoozed"
    assert (
        timedelta(days=6, hours=23) < row["snoozed_until"] - row["updated_at"] <= timedelta(days=7)
    )
    message = slack.messages[(row["slack_channel"], row["slack_ts"])]
    assert _buttons(message) == ["task_claim", "task_done"]


def test_overdue_tasks_are_reminded_once_in_their_thread(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, accounts
):
    late = add_task(engine, due_at=NOW - timedelta(hours=1))
    add_task(engine, title="not yet due", due_at=NOW + timedelta(hours=1))
    add_task(engine, title="late but done", due_at=NOW - timedelta(hours=1), status="done")
    post_pending_tasks(engine, config, settings, now=NOW - timedelta(hours=2))
    slack.clear()
    first = send_reminders(engine, config, settings, now=NOW)
    second = send_reminders(engine, config, settings, now=NOW + timedelta(hours=1))
    assert (first.sent, second.sent) == (1, 0)
    (reminder,) = slack.calls("chat.postMessage")
    row = task_row(engine, late)
    assert reminder.body["thread_ts"] == row["slack_ts"] and row["reminded_at"] == NOW
    assert "1h overdue" in reminder.body["blocks"][0]["text"]["text"]


def _signal(engine: Engine, account_id: str, kind: str, fired_at) -> None:
    with engine.begin() as conn:
        conn.execute(
            Signal.__table__.insert().values(
                account_id=account_id, kind=kind, subject="", status="open", fired_at=fired_at
            )
        )


def test_the_digest_lists_new_risks_and_expansions_once_a_day(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, accounts
):
    _signal(engine, "acme", "health_degradation", NOW - timedelta(hours=3))
    _signal(engine, "globex", "api_limit_proximity", NOW - timedelta(hours=5))
    _signal(engine, "initech", "abandonment", NOW - timedelta(days=3))  # not new
    _signal(engine, "*", "feed_stale", NOW - timedelta(hours=1))
    first = send_digest(engine, config, settings, now=NOW)
    again = send_digest(engine, config, settings, now=NOW + timedelta(hours=2))
    assert (first.sent, again.sent) == (1, 0)
    (post,) = slack.calls("chat.postMessage")
    text = _text(post.body)
    assert "New risks (1)" in text and "Acme Corp" in text and "health degradation" in text
    assert "New expansion-ready (1)" in text and "Globex" in text
    assert "Initech" not in text
    _signal(engine, "initech", "auth_expired", NOW + timedelta(hours=20))
    assert send_digest(engine, config, settings, now=NOW + timedelta(days=1)).sent == 1
    nxt = slack.calls("chat.postMessage")[-1]
    assert "Initech" in _text(nxt.body) and "Acme Corp" not in _text(nxt.body)
    with engine.connect() as conn:
        assert conn.execute(select(KeyValue).where(KeyValue.key == "bot.digest.last")).first()


@pytest.mark.parametrize("missing", ["slack_bot_token"])
def test_posting_without_a_token_names_the_variable(engine: Engine, config: Config, missing: str):
    from integration_signals.bot.client import SlackNotConfigured

    with pytest.raises(SlackNotConfigured, match="SLACK_BOT_TOKEN"):
        post_pending_tasks(engine, config, Settings(), now=NOW)


def test_the_feed_stale_alert_is_posted_once_for_all_accounts(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack
):
    add_task(
        engine,
        account_id="*",
        signal_kind="feed_stale",
        title="Event feed stale: no events for 7 hours",
        body="Risk signals and CRM writes are on hold until events flow again.",
        owner=None,
    )
    assert post_pending_tasks(engine, config, settings, now=NOW).sent == 1
    assert post_pending_tasks(engine, config, settings, now=NOW).sent == 0
    (post,) = slack.calls("chat.postMessage")
    assert post.body["channel"] == "C0TASKS"
    assert "*Event feed stale: no events for 7 hours*\nAll accounts" in _text(post.body)


def test_a_rate_limited_post_waits_for_retry_after_and_goes_out_once(
    engine: Engine, config: Config, settings: Settings, slack: FakeSlack, accounts
):
    task_id = add_task(engine)
    slack.fail_next["chat.postMessage"] = "ratelimited"  # HTTP 429, Retry-After: 0
    report = post_pending_tasks(engine, config, settings, now=NOW)
    assert (report.sent, report.failed) == (1, 0)
    assert len(slack.calls("chat.postMessage")) == 2  # the 429, then the retry
    assert len(slack.messages) == 1 and task_row(engine, task_id)["slack_ts"]
