"""Salesforce over simple-salesforce (requests): login and re-login, timeouts, call
counting, ``Sforce-Limit-Info``, retries, and the one pure function that maps
Salesforce's errors to ours.

Auth lives here: ``SALESFORCE_INSTANCE_URL`` + ``SALESFORCE_ACCESS_TOKEN``, or
``SALESFORCE_USERNAME`` / ``SALESFORCE_PASSWORD`` / ``SALESFORCE_SECURITY_TOKEN`` /
``SALESFORCE_DOMAIN`` (login, and one re-login when the session expires).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

from integration_signals.config import Settings, SyncsConfig
from integration_signals.syncs.exceptions import (
    BatchRejected,
    DailyLimitReached,
    FatalSyncError,
    MissingFields,
    RetriableError,
    SessionExpired,
    SyncError,
)
from integration_signals.syncs.retry import Backoff
from integration_signals.syncs.salesforce.settings import SalesforceEnv

log = logging.getLogger("syncs.salesforce")
T = TypeVar("T")
DEST = "salesforce"
_USAGE = re.compile(r"(?:^|[^-])api-usage=(\d+)/(\d+)")


def _first_error(content: Any) -> tuple[str | None, str]:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        item = content[0]
        return item.get("errorCode") or item.get("statusCode"), str(item.get("message", ""))
    if isinstance(content, dict):
        return content.get("errorCode"), str(content.get("message", ""))
    return None, str(content or "")[:300]


def classify(status: int, content: Any, headers: Mapping[str, str] | None = None) -> SyncError:
    """Map one Salesforce error response to how we recover from it (pure)."""
    code, message = _first_error(content)
    message = message[:300]
    ctx: dict[str, Any] = {"destination": DEST, "status": status, "code": code}
    retry_after = None
    if headers:
        for key, value in headers.items():
            if key.lower() == "retry-after":
                try:
                    retry_after = float(value)
                except ValueError:
                    retry_after = None
    if code == "REQUEST_LIMIT_EXCEEDED":
        if "TotalRequests" in message:
            return DailyLimitReached(
                "Salesforce's 24-hour API request allowance is used up; the run stopped"
                " cleanly and the next run finishes the job once usage falls below the"
                " limit (Setup > Company Information shows it)",
                resume_after="when the org's rolling 24-hour API usage is below its limit",
                **ctx,
            )
        return RetriableError(
            f"Salesforce REQUEST_LIMIT_EXCEEDED: {message}", retry_after=retry_after, **ctx
        )
    if status == 401 or code == "INVALID_SESSION_ID":
        return SessionExpired(
            "Salesforce session expired or invalid (401 INVALID_SESSION_ID); set a fresh"
            " SALESFORCE_ACCESS_TOKEN or configure SALESFORCE_USERNAME/PASSWORD so the"
            " sync can log in again",
            **ctx,
        )
    if status == 429 or status >= 500 or code == "UNABLE_TO_LOCK_ROW":
        return RetriableError(
            f"Salesforce {status} {code or ''}: {message}".strip(), retry_after=retry_after, **ctx
        )
    if code == "INVALID_FIELD":
        names = re.findall(r"No such column '([^']+)'", message)
        return MissingFields(
            f"Salesforce Account lacks {', '.join(names) or 'a mapped field'} ({message});"
            " deploy force-app/ with `sf project deploy start --source-dir force-app`",
            fields=names,
            **ctx,
        )
    if status == 400 and code in (
        "MALFORMED_ID",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "STRING_TOO_LONG",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    ):
        return BatchRejected(f"Salesforce {code}: {message}", **ctx)
    if status == 403:
        return FatalSyncError(
            f"Salesforce refused the request (403 {code}: {message}); check the integration"
            " user's permissions on Account and the mapped fields",
            **ctx,
        )
    return FatalSyncError(f"Salesforce {status} {code or ''}: {message}".strip(), **ctx)


class _Session(requests.Session):
    """A requests session with a default timeout and a hook on every response."""

    def __init__(self, timeout: float, on_response: Callable[[requests.Response], None]):
        super().__init__()
        self._timeout = timeout
        self._on_response = on_response

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        response = super().request(method, url, *args, **kwargs)
        self._on_response(response)
        return response


class SalesforceClient:
    """Every Salesforce request goes through ``call``: retries, re-login, errors."""

    def __init__(
        self,
        settings: Settings,
        config: SyncsConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.env = env = settings.env(SalesforceEnv)
        self.redact = settings.answer_redactor()
        self.version = config.salesforce.api_version
        self.api_calls = 0
        self.usage: dict[str, Any] = {}
        self.relogins = 0
        self.last_headers: Mapping[str, str] = {}
        self.session = _Session(config.request_timeout_seconds, self._on_response)
        self.backoff = Backoff(
            attempts=config.max_attempts,
            initial=config.backoff_initial_seconds,
            cap=config.backoff_max_seconds,
            sleep=sleep,
            on_retry=lambda exc, wait: log.warning(
                "Salesforce: %s; retrying in %.1fs", exc.message, wait
            ),
        )
        self.can_login = bool(env.salesforce_username and env.salesforce_password)
        if env.salesforce_access_token and env.salesforce_instance_url:
            self.sf = Salesforce(
                instance_url=env.salesforce_instance_url,
                session_id=env.salesforce_access_token.get_secret_value(),
                version=self.version,
                session=self.session,
            )
        elif self.can_login:
            self.sf = self._login()
        else:
            raise FatalSyncError(
                "no Salesforce credentials; set SALESFORCE_INSTANCE_URL and"
                " SALESFORCE_ACCESS_TOKEN, or SALESFORCE_USERNAME, SALESFORCE_PASSWORD,"
                " SALESFORCE_SECURITY_TOKEN (and SALESFORCE_DOMAIN=test for a sandbox)",
                destination=DEST,
            )

    def _on_response(self, response: requests.Response) -> None:
        """Count the call, read the usage, and redact the answer of our secrets before
        simple-salesforce or we read it (an echoed session id or password never reaches
        a record's error, a run's error or a log line). A streamed answer (never one
        we read) is left alone."""
        if self.redact and getattr(response, "_content_consumed", False) and response._content:
            response._content = self.redact(response._content)
        self.api_calls += 1
        self.last_headers = response.headers
        match = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.usage = {"api_usage": int(match.group(1)), "api_limit": int(match.group(2))}

    def _login(self) -> Salesforce:
        s = self.env
        assert s.salesforce_password is not None
        try:
            session_id, instance = SalesforceLogin(
                username=s.salesforce_username,
                password=s.salesforce_password.get_secret_value(),
                security_token=(
                    s.salesforce_security_token.get_secret_value()
                    if s.salesforce_security_token
                    else None
                ),
                domain=s.salesforce_domain or "login",
                sf_version=self.version,
                session=self.session,
            )
        except SalesforceAuthenticationFailed as exc:
            raise FatalSyncError(
                f"Salesforce login failed for {s.salesforce_username} ({exc.code});"
                " check SALESFORCE_USERNAME, SALESFORCE_PASSWORD, SALESFORCE_SECURITY_TOKEN"
                " and SALESFORCE_DOMAIN",
                destination=DEST,
                code=str(exc.code),
            ) from None
        except requests.RequestException as exc:
            raise FatalSyncError(
                f"Salesforce login did not answer ({type(exc).__name__})", destination=DEST
            ) from None
        self.redact = self.redact.adding(session_id)  # a live credential too
        return Salesforce(
            instance=instance, session_id=session_id, version=self.version, session=self.session
        )

    def _once(self, func: Callable[[Salesforce], T]) -> T:
        try:
            return func(self.sf)
        except SalesforceError as exc:
            raise classify(exc.status, exc.content, self.last_headers) from None
        except requests.RequestException as exc:
            raise RetriableError(
                f"Salesforce did not answer ({type(exc).__name__})", destination=DEST
            ) from None

    def call(self, func: Callable[[Salesforce], T]) -> T:
        """Run one API operation with retries; on an expired session log in again once
        (when username/password are configured) and repeat it."""
        try:
            return self.backoff.call(lambda: self._once(func))
        except SessionExpired:
            if not self.can_login:
                raise
            log.warning("Salesforce session expired; logging in again")
            self.relogins += 1
            self.sf = self._login()
            return self.backoff.call(lambda: self._once(func))
