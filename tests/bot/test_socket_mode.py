"""`signals bot --socket`: the same app over Socket Mode, run as a user would run it,
against a fake Slack that hands out a websocket URL and sends envelopes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.bot.conftest import TOKEN
from tests.fakes.slack import FakeSlack
from tests.fakes.socket_mode import FakeSocketMode


def test_socket_mode_answers_slash_commands_without_a_signing_secret(
    db_url: str, slack: FakeSlack, accounts, tmp_path: Path
):
    ws = FakeSocketMode()
    slack.socket_url = ws.url
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "SIGNALS_DATABASE_URL": db_url,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_APP_TOKEN": "xapp-1-test",
        "SLACK_API_URL": slack.api_url,
    }
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    bot = subprocess.Popen(
        [sys.executable, "-m", "integration_signals", "bot", "--socket"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        command = {
            "team_id": "T111",
            "channel_id": "C0CSM",
            "user_id": "W0ALEX",
            "command": "/integration-health",
            "response_url": slack.response_url(),
            "trigger_id": "1.2.3",
            "api_app_id": "A111",
        }
        ws.send(
            {
                "envelope_id": "e-help",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {**command, "text": "help"},
            }
        )
        help_ack = ws.wait_ack("e-help")
        assert "/integration-health at-risk" in help_ack["payload"]["blocks"][1]["text"]["text"]
        ws.send(
            {
                "envelope_id": "e-acme",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {**command, "text": "Acme Corp", "response_url": slack.response_url()},
            }
        )
        ws.wait_ack("e-acme")
        (answer,) = slack.responses()
        assert answer["blocks"][0]["text"]["text"] == "Acme Corp · integration health"
        assert slack.calls("apps.connections.open")
    finally:
        bot.terminate()
        try:
            bot.wait(10)
        except subprocess.TimeoutExpired:
            bot.kill()
        ws.stop()
