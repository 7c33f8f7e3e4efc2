"""HTTP mode: ``POST /slack/events`` for slash commands and interactivity.

Bolt verifies the signature and timestamp of every request before any listener runs
(401 ``{"error": "invalid request"}`` otherwise). Dispatch runs in a worker thread, so
a listener waiting for its ack never blocks the event loop of the server it lives in.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from integration_signals.bot.client import SlackNotConfigured
from integration_signals.bot.views import NO_LINKS, CrmLinks
from integration_signals.config import Config, Settings

log = logging.getLogger("signals.bot")

EVENTS_PATH = "/slack/events"


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

    @router.post(EVENTS_PATH, include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        bolt_response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)

    return router


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
