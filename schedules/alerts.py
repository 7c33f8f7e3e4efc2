"""Operational alerts to Slack (a job failing again and again)."""

from __future__ import annotations

from collections.abc import Callable

from integration_signals.config import Settings


def slack_alert(settings: Settings) -> Callable[[str], None] | None:
    """A function posting one message to the tasks channel, or None without Slack."""
    if settings.slack_bot_token is None or not settings.slack_tasks_channel:
        return None
    from integration_signals.bot.client import slack_client

    client = slack_client(settings)
    channel = settings.slack_tasks_channel

    def send(text: str) -> None:
        client.chat_postMessage(channel=channel, text=text)

    return send
