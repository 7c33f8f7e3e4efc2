"""Operational alerts to Slack (a job failing again and again)."""

from __future__ import annotations

from collections.abc import Callable

from integration_signals.config import Settings


def slack_alert(settings: Settings) -> Callable[[str], None] | None:
    """A function posting one message to the tasks channel, or None without Slack."""
    if settings.slack_bot_token is None or not settings.slack_tasks_channel:
        return None
    from slack_sdk import WebClient

    base_url = settings.slack_api_url or WebClient.BASE_URL
    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=10,
    )
    channel = settings.slack_tasks_channel

    def send(text: str) -> None:
        client.chat_postMessage(channel=channel, text=text)

    return send
