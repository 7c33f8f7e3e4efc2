"""Claim / Done / Snooze 7d from the web: plain forms posting to `/tasks/{id}/claim`
(`done`, `snooze`) that act exactly like Slack's buttons — the same `scoring.tasks`
change by the signed-in person's e-mail, the same `task_events` row — and then refresh
the task's Slack message through ``hooks.task_changed``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.background import BackgroundTask

from integration_signals.scoring.tasks import TaskRefused, claim, done, snooze
from integration_signals.web.site import BadRequest, Site, local_path, wants_json

ACTIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "claim": (claim, "claimed"),
    "done": (done, "marked done"),
    "snooze": (snooze, "snoozed for 7 days"),
}


def register(router: APIRouter, site: Site) -> None:
    for name, (change, past) in ACTIONS.items():
        router.add_api_route(
            f"/tasks/{{task_id}}/{name}",
            _handler(site, change, past),
            methods=["POST"],
            include_in_schema=False,
            name=f"task_{name}",
        )


def _handler(site: Site, change: Callable[..., Any], past: str) -> Callable[..., Any]:
    async def act(request: Request, task_id: str) -> Response:
        actor, form = await site.checked_form(request)
        site.allowed(request, "act_on_tasks", what="act on tasks")
        if not task_id.isdigit() or len(task_id) > 12:
            raise BadRequest(f"{task_id!r} is not a task id")
        number = int(task_id)

        def work() -> tuple[Any, TaskRefused | None]:
            try:
                return change(site.engine, number, by=actor.email, now=site.clock()), None
            except TaskRefused as exc:
                return None, exc

        task, refused = await site.run(work)
        exists = task is not None or (refused is not None and refused.status is not None)
        hook = site.hooks.task_changed
        # Like a click in Slack, even a refused action refreshes a stale message.
        refresh = (lambda: hook(number)) if hook is not None and exists else None
        if wants_json(request) or "application/json" in request.headers.get("accept", ""):
            response = site.json(
                {
                    "task": task.model_dump(mode="json") if task is not None else None,
                    "refused": str(refused) if refused else None,
                },
                status=409 if refused else 200,
            )
            if refresh is not None:
                response.background = BackgroundTask(refresh)
            return response
        response = site.redirect(local_path(form.get("next"), "/tasks"), background=refresh)
        if refused is not None:
            site.flash(response, actor, str(refused), level="error")
        else:
            site.flash(response, actor, f"Task {number} {past}.", level="ok")
        return response

    return act
