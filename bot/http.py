"""HTTP mode: ``POST /slack/events`` for slash commands and interactivity.

The signature is checked first, on the raw bytes, before anything parses the body
(``X-Slack-Signature`` and ``X-Slack-Request-Timestamp`` with the signing secret, at
most 5 minutes old; API-NOTES C2): a request without a valid one is 401
``{"error": "invalid request"}`` and costs one HMAC. A signed request whose body is not
what Slack sends is 400. Both are logged as one line, at most one per reason every
``LOG_EVERY`` seconds (the next line counts the ones left out), so a flood of junk
cannot fill the log. Bolt then dispatches in a worker thread, so a listener waiting for
its ack never blocks the event loop of the server it lives in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from integration_signals.bot.client import SlackNotConfigured
from integration_signals.bot.views import NO_LINKS, CrmLinks
from integration_signals.config import Config, Settings

log = logging.getLogger("signals.bot")

EVENTS_PATH = "/slack/events"
LOG_EVERY = 10.0  # seconds between two log lines for the same kind of refusal


class RateLimitedLog:
    """At most one warning per reason every ``every`` seconds; the next line that goes
    out says how many were left out since the previous one."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        every: float = LOG_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.every, self.clock = logger, every, clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, reason: str, detail: str) -> None:
        now = self.clock()
        with self._lock:
            last = self._last.get(reason)
            if last is not None and now - last < self.every:
                self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
                return
            self._last[reason] = now
            left_out = self._suppressed.pop(reason, 0)
        more = f" (+{left_out} more in the last {self.every:g}s)" if left_out else ""
        self.logger.warning("POST %s refused: %s; %s%s", EVENTS_PATH, reason, detail, more)


def _verified(verifier: SignatureVerifier, body: bytes, request: Request) -> str | None:
    """Why the request is not from Slack, or None when its signature holds."""
    timestamp = request.headers.get("x-slack-request-timestamp")
    signature = request.headers.get("x-slack-signature")
    if not timestamp or not signature:
        return "missing signature"
    try:
        stamp = int(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs(time.time() - stamp) > 60 * 5:
        return "stale timestamp"
    try:
        valid = verifier.is_valid(
            body=body.decode("utf-8"), timestamp=timestamp, signature=signature
        )
    except (UnicodeDecodeError, ValueError):
        valid = False
    return None if valid else "bad signature"


def slack_router(
    engine: Engine, config: Config, settings: Settings, *, crm_links: CrmLinks = NO_LINKS
) -> APIRouter:
    """A router with ``POST /slack/events``. Without ``SLACK_BOT_TOKEN`` and
    ``SLACK_SIGNING_SECRET`` it answers 503 naming them (and runs nothing), so a
    server without Slack still starts."""
    from integration_signals.bot.app import build_app

    router = APIRouter()
    try:
        bolt = build_app(engine, config, settings, crm_links=crm_links)
    except SlackNotConfigured as exc:
        reason = str(exc)
        log.warning("%s; %s answers 503", reason, EVENTS_PATH)

        @router.post(EVENTS_PATH, include_in_schema=False)
        async def slack_not_configured() -> Response:
            return JSONResponse({"error": reason}, status_code=503)

        return router

    assert settings.slack_signing_secret is not None  # build_app required it
    verifier = SignatureVerifier(settings.slack_signing_secret.get_secret_value())
    refusals = RateLimitedLog(log)

    @router.post(EVENTS_PATH, include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        why = _verified(verifier, body, request)
        if why is not None:
            refusals.warning(why, f"{len(body)} bytes from {_client(request)}; answered 401")
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            bolt_request = to_bolt_request(request, body)
        except Exception as exc:  # signed, but not a body Slack sends: say so, run nothing
            refusals.warning(
                "malformed body", f"{type(exc).__name__} from {_client(request)}; answered 400"
            )
            return JSONResponse({"error": "malformed request"}, status_code=400)
        bolt_response = await run_in_threadpool(bolt.dispatch, bolt_request)
        return to_starlette_response(bolt_response)

    return router


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def create_bot_app(
    engine: Engine, config: Config, settings: Settings, *, crm_links: CrmLinks = NO_LINKS
) -> FastAPI:
    """A FastAPI app with only the bot and ``GET /healthz`` (`signals bot`); `signals
    serve` mounts the same router next to the ingest API."""
    app = FastAPI(title="Integration Signals Slack bot", docs_url=None, redoc_url=None)
    app.include_router(slack_router(engine, config, settings, crm_links=crm_links))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
