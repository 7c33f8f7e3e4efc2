"""`/integration-health` over signed HTTP: the dashboard, the pick-list, nearest names,
at-risk and expansion lists, channel access rules, hostile text and failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select, text

from integration_signals.config import ChannelScope, Config, Settings, load_config
from integration_signals.store.ingest import Ingestor, read_objects
from integration_signals.store.models import Account, AccountScore
from tests.bot.conftest import NOW, SlackSender, serve
from tests.bot.test_blocks import HOSTILE, _mrkdwn_objects
from tests.bot.test_tasks import _text
from tests.fakes.slack import FakeSlack


def _events(now):
    events = []
    for day in range(1, 11):
        at = now - timedelta(days=day, hours=-2)
        events.append(
            {
                "event_id": f"sf-{day}",
                "type": "sync.succeeded",
                "occurred_at": at.isoformat(),
                "account_id": "acme",
                "integration": "salesforce",
                "connection_id": "acme-sf",
                "records": 15000,
                "api_calls": 300,
                "trigger": "scheduled",
            }
        )
    for i in range(15):
        at = now - timedelta(days=6, hours=-i * 8)
        kind = "sync.failed" if i % 3 == 0 else "sync.succeeded"
        events.append(
            {
                "event_id": f"zd-{i}",
                "type": kind,
                "occurred_at": at.isoformat(),
                "account_id": "acme",
                "integration": "zendesk",
                "connection_id": "acme-zd",
                "records": 300,
                "trigger": "scheduled",
                "error": "timeout" if kind == "sync.failed" else None,
            }
        )
    for kind, cid, integ in (
        ("integration.installed", "acme-sf", "salesforce"),
        ("integration.installed", "acme-zd", "zendesk"),
    ):
        events.append(
            {
                "event_id": f"in-{cid}",
                "type": kind,
                "occurred_at": (now - timedelta(days=30)).isoformat(),
                "account_id": "acme",
                "integration": integ,
                "connection_id": cid,
            }
        )
    return events


@pytest.fixture
def usage(engine: Engine, config: Config, accounts) -> None:
    now = datetime.now(UTC)  # the served bot reads the real clock
    Ingestor(engine, config, now=now).ingest(read_objects(_events(now)), source="test")


def _scores(engine: Engine, rows: list[tuple[str, int, str, list[str]]]) -> None:
    with engine.begin() as conn:
        for account_id, score, band, segments in rows:
            conn.execute(
                AccountScore.__table__.insert().values(
                    account_id=account_id,
                    as_of=NOW,
                    scored_at=NOW,
                    score=score,
                    band=band,
                    components={},
                    reason=f"{account_id} reason",
                    segments=segments,
                    active_integrations=1,
                    percentiles={},
                )
            )


def test_an_account_id_answers_with_its_dashboard_through_the_response_url(
    bot: SlackSender, slack: FakeSlack, usage
):
    response = bot.command("acme")
    assert response.status_code == 200 and response.text == ""  # acknowledged at once
    (answer,) = slack.responses()
    assert answer["response_type"] == "ephemeral"
    assert answer["blocks"][0]["text"]["text"] == "Acme Corp · integration health"
    text = _text(answer)
    assert "*Plan*\nenterprise" in text and "$8,500" in text
    assert ":large_green_circle: *Salesforce* · active · 100% success · 13K/day" in text
    assert ":large_green_circle: *Zendesk* · active · 67% success" in text
    assert "Health status: *" in text
    assert "· Zendesk: 67% sync success (5 of 15 failed this week)" in text
    assert "*Stage*" not in text  # a customer since 2024 is scored, not onboarding
    assert "Salesforce: 001A000001" in text and "HubSpot: 9001" in text


@pytest.mark.parametrize(
    "typed",
    ["Acme Corp", "ACME CORP", "acme.com", "https://www.acme.com/pricing", "Acme Corp Europe GmbH"],
    ids=["exact name", "name in capitals", "domain", "url", "fuzzy"],
)
def test_names_domains_and_near_names_find_the_account(
    bot: SlackSender, slack: FakeSlack, usage, typed
):
    bot.command(typed)
    (answer,) = slack.responses()
    assert answer["blocks"][0]["text"]["text"] == "Acme Corp · integration health"


def test_several_matches_give_a_pick_list_whose_buttons_open_the_dashboard(
    bot: SlackSender, slack: FakeSlack, usage
):
    bot.command("Acme")
    (answer,) = slack.responses()
    assert answer["text"] == "3 accounts match; pick one"
    buttons = [b["accessory"] for b in answer["blocks"] if "accessory" in b]
    assert [b["value"] for b in buttons] == ["id:acme", "id:acme-labs", "id:acme-logistics"]
    bot.click(buttons[0]["action_id"], buttons[0]["value"], channel="C0CSM")
    _, picked = slack.responses(count=2)
    assert picked["replace_original"] is True
    assert picked["blocks"][0]["text"]["text"] == "Acme Corp · integration health"


def test_no_match_names_the_nearest_accounts(bot: SlackSender, slack: FakeSlack, accounts):
    bot.command("Acne Corporation Worldwide")
    (answer,) = slack.responses()
    assert answer["text"] == "No account matches"
    (actions,) = [b for b in answer["blocks"] if b["type"] == "actions"]
    assert [e["text"]["text"] for e in actions["elements"]] == ["Acme Corp", "Acme Labs"]


@pytest.mark.parametrize(
    ("word", "title", "names"),
    [
        ("at-risk", "At-risk accounts (2)", ["Initech", "Globex"]),
        ("expansion", "Expansion-ready accounts (1)", ["Acme Corp"]),
    ],
)
def test_at_risk_and_expansion_list_the_top_accounts_of_each_segment(
    engine: Engine, bot: SlackSender, slack: FakeSlack, accounts, word, title, names
):
    _scores(
        engine,
        [
            ("acme", 88, "healthy", ["expansion-ready"]),
            ("globex", 45, "at_risk", ["at-risk"]),
            ("initech", 30, "at_risk", ["at-risk"]),
            ("acme-labs", 60, "watch", []),
        ],
    )
    bot.command(word)
    (answer,) = slack.responses()
    assert answer["blocks"][0]["text"]["text"] == title
    text = _text(answer)
    positions = [text.index(f"*{n}*") for n in names]
    assert positions == sorted(positions)
    assert "Acme Labs" not in text


def _scoped_bot(engine: Engine, settings: Settings, slack: FakeSlack):
    base = load_config(None)
    scope = ChannelScope(accounts=["globex"])
    config = base.model_copy(
        update={"bot": base.bot.model_copy(update={"access": {"C0GLOBEX": scope}})}
    )
    from integration_signals.bot.http import slack_router

    app = FastAPI()
    app.include_router(slack_router(engine, config, settings))
    server, url = serve(app)
    return server, SlackSender(url, slack)


def test_an_account_outside_the_channels_scope_is_not_found(
    engine: Engine, settings: Settings, slack: FakeSlack, usage
):
    _scores(engine, [("acme", 30, "at_risk", ["at-risk"]), ("globex", 45, "at_risk", ["at-risk"])])
    server, bot = _scoped_bot(engine, settings, slack)
    try:
        for typed in ("acme", "Acme Corp", "acme.com", "Acme"):
            slack.clear()
            bot.command(typed, channel="C0GLOBEX")
            (answer,) = slack.responses()
            assert answer["text"] == "No account matches", typed
            assert "Acme" not in _text(answer).replace(f"You asked for: {typed}", "")
        slack.clear()
        bot.click("pick_account", "id:acme", channel="C0GLOBEX")  # a button from elsewhere
        (answer,) = slack.responses()
        assert answer["text"] == "No account matches"
        slack.clear()
        bot.command("at-risk", channel="C0GLOBEX")
        (answer,) = slack.responses()
        assert "Globex" in _text(answer) and "Acme" not in _text(answer)
        slack.clear()
        bot.command("globex", channel="C0GLOBEX")
        (answer,) = slack.responses()
        assert answer["blocks"][0]["text"]["text"] == "Globex · integration health"
        slack.clear()
        bot.command("acme", channel="C0OTHER")  # unlisted channels see everything by default
        (answer,) = slack.responses()
        assert answer["blocks"][0]["text"]["text"] == "Acme Corp · integration health"
    finally:
        server.should_exit = True


@pytest.mark.parametrize("hostile", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_text_gets_a_safe_readable_answer(
    engine: Engine, bot: SlackSender, slack: FakeSlack, accounts, hostile: str
):
    response = bot.command(hostile)
    assert response.status_code == 200
    (answer,) = slack.responses()
    assert (
        answer["text"] in ("No account matches",)
        or answer["text"].endswith("pick one")
        or ("integration health" in answer["text"])
    )
    assert "Traceback" not in str(answer)
    for block in answer["blocks"]:
        for mrkdwn in _mrkdwn_objects(block):  # data shows up in mrkdwn only escaped
            assert "<!" not in mrkdwn and "<@" not in mrkdwn and "<http" not in mrkdwn
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Account)).scalar_one() == 5


def test_an_internal_failure_answers_with_a_reference_never_a_trace(
    engine: Engine, bot: SlackSender, slack: FakeSlack, accounts, caplog
):
    with engine.begin() as conn:  # a broken database: the scores table is gone
        conn.execute(text("ALTER TABLE account_scores RENAME TO account_scores_away"))
    try:
        with caplog.at_level("ERROR", logger="signals.bot"):
            response = bot.command("at-risk")
            (answer,) = slack.responses()
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE account_scores_away RENAME TO account_scores"))
    assert response.status_code == 200
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("Sorry, that did not work on our side (ref ")
    assert "account_scores" not in str(answer) and "Traceback" not in str(answer)
    ref = answer["text"].split("(ref ")[1][:8]
    assert any(ref in r.getMessage() and r.exc_info for r in caplog.records)
