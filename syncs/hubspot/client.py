"""HubSpot over hubspot-api-client (urllib3): the rate limiter, retries, call counting,
and the one pure function that maps HubSpot's errors to ours.

Auth lives here: ``HUBSPOT_ACCESS_TOKEN`` (a private app token) and ``HUBSPOT_API_URL``
(default https://api.hubapi.com).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
import urllib3
from hubspot import HubSpot
from hubspot.crm.companies.exceptions import ApiException as CompaniesApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

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
from integration_signals.syncs.hubspot.settings import HubSpotEnv
from integration_signals.syncs.hubspot.shapes import search_page
from integration_signals.syncs.retry import Backoff, SlidingWindowLimiter

log = logging.getLogger("syncs.hubspot")
T = TypeVar("T")
DEFAULT_URL = "https://api.hubapi.com"
DEST = "hubspot"


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _body(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return {"message": body[:300]}
    return body if isinstance(body, dict) else {}


def _missing_properties(body: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for err in body.get("errors") or []:
        if err.get("code") == "PROPERTY_DOESNT_EXIST":
            names += (err.get("context") or {}).get("propertyName") or []
    if not names and "PROPERTY_DOESNT_EXIST" in str(body.get("message", "")):
        names = re.findall(r'"name\\?"\s*:\s*\\?"([^"\\]+)', str(body["message"]))
    return sorted(set(names))


def classify(status: int, body: Any, headers: Mapping[str, str] | None = None) -> SyncError:
    """Map one HubSpot error response to how we recover from it (pure)."""
    data = _body(body)
    category = data.get("category") or data.get("errorType")
    message = str(data.get("message") or "")[:300]
    ctx: dict[str, Any] = {"destination": DEST, "status": status, "code": category}
    if status == 429:
        if data.get("policyName") == "DAILY":
            return DailyLimitReached(
                "HubSpot's daily API limit is used up; the run stopped cleanly and the next"
                " run after midnight in the HubSpot account's time zone finishes the job",
                resume_after="midnight in the HubSpot account's time zone",
                **ctx,
            )
        retry_after = _number(_header(headers, "Retry-After"))
        if retry_after is None:
            interval = _number(_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds"))
            retry_after = interval / 1000 if interval is not None else None
        policy = data.get("policyName") or "rate limit"
        return RetriableError(f"HubSpot 429 ({policy})", retry_after=retry_after, **ctx)
    if status in (423, 502, 503, 504) or status >= 500:
        retry_after = _number(_header(headers, "Retry-After"))
        if status == 423 and retry_after is None:
            retry_after = 2.0  # HubSpot advises at least 2 s after 423 Locked
        return RetriableError(
            f"HubSpot {status}: {message or 'server error'}", retry_after=retry_after, **ctx
        )
    if status == 401:
        return SessionExpired(
            "HubSpot refused the access token (401); check HUBSPOT_ACCESS_TOKEN", **ctx
        )
    if status == 403:
        scopes: list[str] = []
        for err in data.get("errors") or []:
            scopes += (err.get("context") or {}).get("requiredGranularScopes") or []
        need = f" (needs {', '.join(scopes)})" if scopes else ""
        return FatalSyncError(
            f"HubSpot refused the request (403 {category}){need}; grant the private app"
            " the crm.objects.companies and crm.schemas.companies scopes",
            **ctx,
        )
    if status == 400:
        missing = _missing_properties(data)
        if missing:
            return MissingFields(
                f"HubSpot companies lack the properties {', '.join(missing)};"
                " run `signals provision hubspot`",
                fields=missing,
                **ctx,
            )
        return BatchRejected(f"HubSpot 400 {category}: {message}", **ctx)
    return FatalSyncError(f"HubSpot {status} {category or ''}: {message}".strip(), **ctx)


class HubSpotClient:
    """Every HubSpot request goes through ``_call``: limiter, timing, counting, errors."""

    def __init__(
        self,
        settings: Settings,
        config: SyncsConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        env = settings.env(HubSpotEnv)
        # Every answer is redacted of our secrets where it arrives (``_once``).
        self.redact = settings.answer_redactor()
        if not env.hubspot_access_token:
            raise FatalSyncError(
                "no HubSpot credentials; set HUBSPOT_ACCESS_TOKEN (a private app token)",
                destination=DEST,
            )
        self.base_url = (env.hubspot_api_url or DEFAULT_URL).rstrip("/")
        cfg = config.hubspot
        self._timeout = config.request_timeout_seconds
        self._api = HubSpot(
            access_token=env.hubspot_access_token.get_secret_value(),
            host=self.base_url,
            retry=urllib3.util.Retry(total=False),  # we retry, counting every attempt
        )
        companies = self._api.crm.companies
        self._batch = companies.batch_api
        self._search = companies.search_api
        self._props = self._api.crm.properties.core_api
        self._groups = self._api.crm.properties.groups_api
        self.limiter = SlidingWindowLimiter(
            cfg.requests_per_window, cfg.window_seconds, sleep=sleep
        )
        self.search_limiter = SlidingWindowLimiter(
            max(1, int(cfg.search_per_second)), 1.0, sleep=sleep
        )
        self.backoff = Backoff(
            attempts=config.max_attempts,
            initial=config.backoff_initial_seconds,
            cap=config.backoff_max_seconds,
            sleep=sleep,
            on_retry=lambda exc, wait: log.warning(
                "HubSpot: %s; retrying in %.1fs", exc.message, wait
            ),
        )
        self._count_lock = threading.Lock()
        self.api_calls = 0
        self.rate_limited = 0
        self.usage: dict[str, Any] = {}

    # ------------------------------------------------------------------ plumbing
    def _read_headers(self, headers: Mapping[str, str] | None) -> None:
        for name, key in (
            ("X-HubSpot-RateLimit-Daily", "daily_limit"),
            ("X-HubSpot-RateLimit-Daily-Remaining", "daily_remaining"),
            ("X-HubSpot-RateLimit-Max", "window_limit"),
            ("X-HubSpot-RateLimit-Remaining", "window_remaining"),
        ):
            value = _number(_header(headers, name))
            if value is not None:
                self.usage[key] = int(value)
        remaining = _number(_header(headers, "X-HubSpot-RateLimit-Remaining"))
        interval = _number(_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds"))
        # Someone else (another app process) used the window up: wait for it to roll.
        if remaining == 0 and self.limiter.used() < self.limiter.limit - 1:
            self.limiter.pause((interval or self.limiter.window * 1000) / 1000)

    def _once(self, func: Callable[..., Any], search: bool) -> Any:
        """One request. Responses are read as raw JSON: the SDK's model deserialisation
        (a dateutil parse per timestamp) costs more than the 100-record batch itself."""
        if search:
            self.search_limiter.acquire()
        self.limiter.acquire()
        with self._count_lock:
            self.api_calls += 1
        try:
            response = func(_preload_content=False, _request_timeout=self._timeout)
            raw = self.redact(response.data)
            headers = response.headers
        except urllib3.exceptions.HTTPError as exc:
            raise RetriableError(
                f"HubSpot did not answer ({type(exc).__name__})", destination=DEST
            ) from None
        except (CompaniesApiException, PropertiesApiException) as exc:
            status = int(exc.status or 0)
            if status == 429:
                with self._count_lock:
                    self.rate_limited += 1
            self._read_headers(exc.headers)
            body = self.redact(exc.body) if isinstance(exc.body, str | bytes) else exc.body
            error = classify(status, body, exc.headers)
            if status == 429 and isinstance(error, RetriableError):
                self.limiter.pause(error.retry_after or self.limiter.window)
            raise error from None
        finally:
            self.limiter.done()
            if search:
                self.search_limiter.done()
        self._read_headers(headers)
        return orjson.loads(raw) if raw else {}

    def _call(self, func: Callable[..., T], *, search: bool = False) -> T:
        return self.backoff.call(lambda: self._once(func, search))

    # ------------------------------------------------------------------ calls
    def batch_update(self, inputs: Sequence[tuple[str, dict[str, str]]]) -> dict[str, Any]:
        """POST batch/update; the raw envelope (``results``, and ``errors`` on a 207)."""
        body = {"inputs": [{"id": i, "properties": p} for i, p in inputs]}
        result: dict[str, Any] = self._call(
            lambda **kw: self._batch.update_with_http_info(
                batch_input_simple_public_object_batch_input=body, **kw
            )
        )
        return result

    def search_domains(
        self, patterns: Sequence[str]
    ) -> tuple[list[tuple[str, Any]], list[tuple[Any, str]]]:
        """(id, domain) of every company whose domain contains one of ``patterns``
        (one filter group each, so at most 5 patterns a request), and the problems of
        odd answers: (the domain it concerns or None when unknown, reason)."""
        groups = [
            {
                "filters": [
                    {"propertyName": "domain", "operator": "CONTAINS_TOKEN", "value": f"*{p}*"}
                ]
            }
            for p in patterns
        ]
        found: list[tuple[str, Any]] = []
        problems: list[tuple[Any, str]] = []
        after: str | None = None
        while True:
            request: dict[str, Any] = {
                "filterGroups": groups,
                "properties": ["domain"],
                "limit": 200,
            }
            if after:
                request["after"] = after
            page = self._call(
                lambda r=request, **kw: self._search.do_search_with_http_info(
                    public_object_search_request=r, **kw
                ),
                search=True,
            )
            hits, no_id, after, problem = search_page(page)
            found.extend(hits)
            if problem:
                problems.append((None, problem))
            problems.extend((d, "HubSpot answered a result without an id") for d in no_id)
            if not after:
                return found, problems

    def property_names(self) -> set[str]:
        result = self._call(
            lambda **kw: self._props.get_all_with_http_info(object_type="companies", **kw)
        )
        return {p["name"] for p in result.get("results") or []}

    def group_exists(self, name: str) -> bool:
        try:
            self._call(
                lambda **kw: self._groups.get_by_name_with_http_info(
                    object_type="companies", group_name=name, **kw
                )
            )
        except FatalSyncError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def create_group(self, name: str, label: str) -> None:
        body = {"name": name, "label": label, "displayOrder": -1}
        self._call(
            lambda **kw: self._groups.create_with_http_info(
                object_type="companies", property_group_create=body, **kw
            )
        )

    def create_property(self, definition: dict[str, Any]) -> None:
        self._call(
            lambda **kw: self._props.create_with_http_info(
                object_type="companies", property_create=definition, **kw
            )
        )
