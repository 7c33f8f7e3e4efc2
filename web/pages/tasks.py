"""The task queue (`/tasks`, twin `/api/tasks`): playbook tasks by owner and status from
`scoring.views.tasks_queue`, each with the Claim / Done / Snooze 7d forms the account
page has (they post to `/tasks/{id}/claim|done|snooze` and come back here)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from integration_signals.scoring.views import TASK_STATUSES, ViewError, tasks_queue
from integration_signals.web import auth
from integration_signals.web.site import BadRequest, Site


def register(router: APIRouter, site: Site) -> None:
    @router.get("/tasks", include_in_schema=False)
    @router.get("/api/tasks", include_in_schema=False)
    def tasks_page(request: Request) -> Response:
        actor = site.signed_in(request)
        query = request.query_params
        try:
            view = tasks_queue(
                site.engine,
                as_of=site.as_of(request),
                owner=query.get("owner") or None,
                status=query.get("status") or None,
            )
        except ViewError as exc:
            raise BadRequest(str(exc)) from None
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return site.page(
            request,
            view,
            "tasks.html",
            title="Tasks",
            nav="tasks",
            statuses=TASK_STATUSES,
            can_act=auth.can(actor, "act_on_tasks"),
            me=actor.email,
            back=here,
        )
