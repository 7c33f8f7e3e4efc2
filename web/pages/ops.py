"""Operations (`/ops`, twin `/api/ops`): the scheduler's jobs (last run, state, failures
in a row, next run, stale), feed freshness with the stale-feed alarm, the last scoring
run and the quarantined lines — `scoring.views.ops_view`, with the live scheduler's
status merged in when this process runs one."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from integration_signals.scoring.views import ops_view
from integration_signals.web.site import Site


def register(router: APIRouter, site: Site) -> None:
    @router.get("/ops", include_in_schema=False)
    @router.get("/api/ops", include_in_schema=False)
    def ops_page(request: Request) -> Response:
        site.signed_in(request)
        status = site.hooks.scheduler_status
        view = ops_view(
            site.engine,
            site.config,
            now=site.clock(),
            scheduler=status() if status is not None else None,
        )
        return site.page(
            request,
            view,
            "ops.html",
            title="Operations",
            nav="ops",
            scheduler_running=status is not None,
        )
