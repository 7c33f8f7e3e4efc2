"""Looking for secret values where they must never be: every secret variable set to a
recognisable value, then stdout, stderr, log records and a dump of every database table
searched for each value (tests of vendors that echo what they were sent)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, MetaData, select

# Every secret variable the service reads; a test overrides the one its fake checks.
SECRETS = {
    "SIGNALS_INGEST_TOKEN": "ingest-secret-7f1c2b",
    "SIGNALS_PULL_URL": "postgresql://reader:pull-pass-93ad@127.0.0.1:1/src",
    "SLACK_BOT_TOKEN": "xoxb-bot-secret-4242",
    "SLACK_SIGNING_SECRET": "signing-secret-8e8e",
    "SLACK_APP_TOKEN": "xapp-app-secret-1717",
    "SALESFORCE_ACCESS_TOKEN": "00Dsf-secret-session-55",
    "SALESFORCE_PASSWORD": "sf-password-secret-31",
    "SALESFORCE_SECURITY_TOKEN": "sf-security-token-secret-62",
    "HUBSPOT_ACCESS_TOKEN": "pat-na1-hubspot-secret-09",
}
PULL_PASSWORD = "pull-pass-93ad"


def secret_env(**overrides: str) -> tuple[dict[str, str], list[str]]:
    """Every secret variable (``overrides`` win), and the values to look for."""
    env = {**SECRETS, **overrides}
    values = [v for k, v in env.items() if k != "SIGNALS_PULL_URL"] + [PULL_PASSWORD]
    return env, values


def db_text(engine: Engine) -> str:
    """Every row of every table, as text."""
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return "\n".join(
            repr(row) for table in meta.sorted_tables for row in conn.execute(select(table))
        )


def assert_clean(where: str, text: str, values: Iterable[str]) -> None:
    for value in values:
        assert value not in text, f"a secret ({value[:6]}...) in {where}"


def assert_results_clean(results: dict[str, Any], values: Iterable[str]) -> None:
    """stdout and stderr of each named CLI result."""
    values = list(values)
    for name, result in results.items():
        assert_clean(f"{name} stdout", result.stdout, values)
        assert_clean(f"{name} stderr", result.stderr if result.stderr_bytes else "", values)
