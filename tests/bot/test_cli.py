"""`signals bot ...` from the command line: the jobs by hand with --json, the demo's
Slack step, and one-line refusals when Slack is not configured."""

from __future__ import annotations

import json

from sqlalchemy import Engine

from tests.bot.conftest import TOKEN, add_task, task_row
from tests.fakes.slack import FakeSlack


def _env(slack: FakeSlack) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": slack.api_url,
        "SLACK_TASKS_CHANNEL": "C0TASKS",
    }


def test_post_tasks_remind_and_digest_run_by_hand(cli, engine: Engine, slack: FakeSlack, accounts):
    task_id = add_task(engine)
    posted = cli("bot", "post-tasks", "--as-of", "2026-11-20T12:00:00Z", "--json", env=_env(slack))
    assert posted.exit_code == 0, posted.stderr
    assert json.loads(posted.stdout) == {
        "sent": 1,
        "failed": 0,
        "skipped": 0,
        "held_back": 0,
        "alerted": 0,
        "errors": [],
    }
    assert task_row(engine, task_id)["slack_ts"] is not None
    late = "2026-11-21T12:00:00Z"
    reminded = cli("bot", "remind", "--as-of", late, "--json", env=_env(slack))
    assert json.loads(reminded.stdout)["sent"] == 1
    digest = cli("bot", "digest", "--as-of", late, "--json", env=_env(slack))
    assert json.loads(digest.stdout)["sent"] == 1
    assert [c.api for c in slack.calls() if c.api == "chat.postMessage"] == ["chat.postMessage"] * 3


def test_without_a_token_the_bot_commands_say_what_to_set(cli):
    for args in (["bot", "post-tasks"], ["bot", "--socket"], ["bot"]):
        result = cli(*args)
        assert result.exit_code == 1, args
        assert "SLACK_BOT_TOKEN" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert "SLACK_APP_TOKEN" in cli("bot", "--socket").stderr
    assert "SLACK_SIGNING_SECRET" in cli("bot").stderr


def test_a_secret_is_never_printed(cli, slack: FakeSlack):
    result = cli("bot", env={"SLACK_BOT_TOKEN": "xoxb-very-secret-value"})
    assert result.exit_code == 1
    assert "very-secret" not in result.stderr + result.stdout


def test_the_manifest_carries_the_request_url(cli):
    import yaml

    result = cli("bot", "manifest", "--url", "https://signals.example.org/")
    manifest = yaml.safe_load(result.stdout)
    assert manifest["features"]["slash_commands"][0]["command"] == "/integration-health"
    assert manifest["features"]["slash_commands"][0]["url"] == (
        "https://signals.example.org/slack/events"
    )
    assert manifest["settings"]["interactivity"]["request_url"] == (
        "https://signals.example.org/slack/events"
    )
    assert {"commands", "chat:write", "users:read.email"} <= set(
        manifest["oauth_config"]["scopes"]["bot"]
    )


def test_the_demo_posts_its_tasks_when_slack_is_configured(cli, slack: FakeSlack):
    result = cli("demo", "--accounts", "60", "--json", env=_env(slack))
    assert result.exit_code == 0, result.stderr
    step = json.loads(result.stdout)["slack"]
    assert step["answer_text"].startswith("Acme Corp: integration health")
    assert step["posted"]["sent"] == step["tasks_pending"] > 0
    assert len(slack.calls("chat.postMessage")) == step["tasks_pending"]


def test_the_manifest_follows_a_renamed_command(cli, tmp_path):
    import yaml

    config = tmp_path / "signals.toml"
    config.write_text('[bot]\ncommand = "/health"\n')
    result = cli("bot", "manifest", env={"SIGNALS_CONFIG": str(config)})
    manifest = yaml.safe_load(result.stdout)
    assert manifest["features"]["slash_commands"][0]["command"] == "/health"
