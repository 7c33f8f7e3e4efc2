"""The Slack Web API client, built from settings in one place."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from integration_signals.config import Settings

DEFAULT_API_URL = "https://slack.com/api/"


class SlackNotConfigured(Exception):
    """A Slack credential is missing; the message names the variable to set."""


def require(settings: Settings, *names: str) -> None:
    """Refuse with one line naming every missing variable (never their values)."""
    missing = [n.upper() for n in names if getattr(settings, n) is None]
    if missing:
        raise SlackNotConfigured(
            f"Slack is not configured: set {', '.join(missing)} (see README, section Slack bot)"
        )


def slack_client(settings: Settings) -> WebClient:
    """A WebClient for the bot token; ``SLACK_API_URL`` points it elsewhere (tests,
    proxies). 429s are retried after Slack's Retry-After."""
    require(settings, "slack_bot_token")
    assert settings.slack_bot_token is not None
    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url or DEFAULT_API_URL,
        timeout=10,
    )
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    return client
