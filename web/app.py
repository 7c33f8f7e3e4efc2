"""The dashboard as a router that `schedules.server.create_app` includes beside the
ingest API, the Slack endpoint and /healthz (their paths and behaviour unchanged).

    router = create_web_app(engine, config, settings, hooks=WebHooks(...))
    app.include_router(router)

Every route of the router answers through ``site.web_route_class``: page errors become
pages (or JSON for ``/api/...``), crashes a reference, and every answer carries the
Content-Security-Policy and the other security headers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter
from sqlalchemy import Engine

from integration_signals.config import Config, Settings
from integration_signals.web.pages import (
    account,
    integrations,
    live,
    ops,
    portfolio,
    session,
    syncs,
    task_actions,
    tasks,
)
from integration_signals.web.site import Site, WebHooks, web_route_class

__all__ = ["WebHooks", "create_web_app", "PAGES"]

# Each module registers its routes; the page builders add theirs here.
PAGES = [session, portfolio, account, task_actions, tasks, ops, live, integrations, syncs]


def create_web_app(
    engine: Engine,
    config: Config,
    settings: Settings,
    *,
    hooks: WebHooks | None = None,
    clock: Callable[[], datetime] | None = None,
) -> APIRouter:
    """The dashboard's routes. ``hooks`` carry what web may not import (Slack refresh,
    sync runs, scheduler status); ``clock`` is for tests."""
    site = Site(engine, config, settings, hooks or WebHooks())
    if clock is not None:
        site.clock = clock
    router = APIRouter(route_class=web_route_class(site))
    for module in PAGES:
        module.register(router, site)
    return router
