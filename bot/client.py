"""The Slack Web API client, built from settings in one place: every part of the
service that talks to Slack (task posting, reminders, the digest, the bot's listeners,
operational alerts) gets its client here."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from integration_signals.config import AnswerRedactor, Settings

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


class RedactingWebClient(WebClient):
    """A WebClient whose every answer is redacted of our secrets as it arrives
    (``Settings.answer_redactor``), before the SDK parses it: a Slack or proxy that
    echoes the Authorization header in an error cannot put the bot token into a
    ``SlackApiError``, an item's recorded failure, a report or a log line."""

    def __init__(self, *, redactor: AnswerRedactor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.redactor = redactor

    def _perform_urllib_http_request(self, *, url: str, args: dict[str, Any]) -> dict[str, Any]:
        response = super()._perform_urllib_http_request(url=url, args=args)
        body = response.get("body")
        if isinstance(body, str | bytes) and self.redactor:
            clean = self.redactor(body)
            if clean is not body:
                response["body"] = clean
                response.pop("parsed_body", None)  # the SDK parses the clean body again
        return response


class _RedactRecords(logging.Filter):
    """The SDK's own debug lines print each answer before ``RedactingWebClient`` sees
    it; this filter, on the client's own logger, redacts them with the same redactor."""

    def __init__(self, redactor: AnswerRedactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redactor(message)
        if clean is not message:
            record.msg, record.args = clean, ()
        return True


def _client_logger(redactor: AnswerRedactor) -> logging.Logger:
    """A logger of this client alone, below the SDK's (same name, same handlers)."""
    name = "slack_sdk.web.base_client"
    logger = logging.Logger(name)
    logger.parent = logging.getLogger(name)
    logger.addFilter(_RedactRecords(redactor))
    return logger


def slack_client(settings: Settings) -> WebClient:
    """A WebClient for the bot token; ``SLACK_API_URL`` points it elsewhere (tests,
    proxies). 429s are retried after Slack's Retry-After. Its answers are redacted of
    every secret value (``RedactingWebClient``)."""
    require(settings, "slack_bot_token")
    assert settings.slack_bot_token is not None
    base_url = settings.slack_api_url or DEFAULT_API_URL
    redactor = settings.answer_redactor()
    client = RedactingWebClient(
        redactor=redactor,
        logger=_client_logger(redactor),
        token=settings.slack_bot_token.get_secret_value(),
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=10,
    )
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    return client
