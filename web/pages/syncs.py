"""The syncs pages: `/syncs` (each destination's last run and the run history: planned,
written, unchanged, failed, API calls, duration, status, error; twin `/api/syncs`),
`/syncs/runs/{id}` (one run's per-record errors and unmatched accounts; twin
`/api/syncs/runs/{id}`), and for admins `POST /syncs/{destination}/run`: "run now"
(the scheduler's run, under its job lock) or, with ``dry_run=1``, a preview of the
record and field diff that writes nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from integration_signals.scoring.views import UnknownSyncRun, sync_history, sync_run
from integration_signals.web import auth
from integration_signals.web.site import (
    NotFound,
    PageError,
    Site,
    SyncAlreadyRunning,
    sync_run_url,
    wants_json,
)

HISTORY = 100


class Unavailable(PageError):
    status = 503


def register(router: APIRouter, site: Site) -> None:
    @router.get("/syncs", include_in_schema=False)
    @router.get("/api/syncs", include_in_schema=False)
    def history(request: Request, destination: str = "", limit: int = HISTORY) -> Response:
        actor = site.signed_in(request)
        view = sync_history(
            site.engine, destination=destination or None, limit=limit, known=_known(site)
        )
        return site.page(
            request,
            view,
            "syncs.html",
            title="Syncs",
            nav="syncs",
            can_run=auth.can(actor, "run_syncs") and site.hooks.start_sync is not None,
            can_preview=auth.can(actor, "preview_syncs") and site.hooks.start_sync is not None,
        )

    @router.get("/syncs/runs/{run_id}", include_in_schema=False)
    @router.get("/api/syncs/runs/{run_id}", include_in_schema=False)
    def run_detail(request: Request, run_id: str) -> Response:
        site.signed_in(request)
        try:
            if not run_id.isdigit() or len(run_id) > 12:
                raise UnknownSyncRun(f"no sync run has id {run_id!r}")
            view = sync_run(site.engine, int(run_id))
        except UnknownSyncRun as exc:
            raise NotFound(str(exc)) from None
        return site.page(
            request, view, "sync_run.html", title=f"Sync run {view['run_id']}", nav="syncs"
        )

    @router.post("/syncs/{destination}/run", include_in_schema=False)
    async def run(request: Request, destination: str) -> Response:
        actor, form = await site.checked_form(request)
        dry_run = form.get("dry_run") in ("1", "true", "on")
        if dry_run:
            site.allowed(request, "preview_syncs", what="preview syncs")
        else:
            site.allowed(request, "run_syncs", what="run syncs")
        start = site.hooks.start_sync
        if start is None:
            raise Unavailable("syncs cannot be started from this process")
        if destination not in _known(site):
            raise NotFound(
                f"no destination is called {destination!r}; "
                f"choose one of {', '.join(_known(site)) or 'none'}"
            )
        as_json = wants_json(request) or "application/json" in request.headers.get("accept", "")
        try:
            report = await site.run(lambda: start(destination, dry_run))
        except SyncAlreadyRunning as exc:
            if as_json:
                return site.json({"error": str(exc), "destination": destination}, status=409)
            response = site.redirect("/syncs")
            site.flash(response, actor, f"{exc}; try again when it has finished", level="error")
            return response
        if as_json:
            return site.json(report)
        if dry_run:
            return site.html(
                request,
                "sync_preview.html",
                title=f"Preview: sync to {destination}",
                nav="syncs",
                view=report,
            )
        response = site.redirect(
            sync_run_url(report["run_id"]) if report.get("run_id") else "/syncs"
        )
        site.flash(response, actor, _outcome(report), level="ok" if _ok(report) else "error")
        return response


def _known(site: Site) -> list[str]:
    return site.hooks.destinations() if site.hooks.destinations is not None else []


def _ok(report: dict[str, Any]) -> bool:
    return report.get("status") == "ok" and not report.get("failed")


def _outcome(report: dict[str, Any]) -> str:
    where = report["destination"]
    if report.get("status") == "ok":
        return (
            f"Sync to {where}: {report['written']} written, {report['unchanged']} unchanged, "
            f"{report['failed']} failed, {report['api_calls']} API calls."
        )
    return f"Sync to {where} {report.get('status')}: {report.get('error') or 'see the run'}"
