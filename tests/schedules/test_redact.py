"""Secrets never reach a job run, an alert or an HTTP 500: the scheduler's redaction
knows the settings' own secrets and every CRM destination's, however they were given."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from integration_signals.config import Settings
from integration_signals.schedules.scheduler import redact


def test_every_secret_is_blanked_whether_given_as_keyword_or_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", "00Dxx!sf-session-from-env")
    settings = Settings(
        signals_ingest_token=SecretStr("ingest-token-1234"),
        slack_bot_token=SecretStr("xoxb-bot-token-5678"),
        hubspot_access_token="pat-na1-hubspot-9abc",
        salesforce_instance_url="https://acme.my.salesforce.com",
    )
    text = (
        "failed: ingest-token-1234 / xoxb-bot-token-5678 / pat-na1-hubspot-9abc /"
        " 00Dxx!sf-session-from-env at https://acme.my.salesforce.com"
    )
    assert redact(text, settings) == (
        "failed: *** / *** / *** / *** at https://acme.my.salesforce.com"
    )
