"""Commands over signals and playbook tasks: `signals signals`, `signals tasks`,
`signals tasks claim|done|snooze`. They report and act on tasks; the rules themselves
are evaluated by scoring runs (`signals score`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import typer
from sqlalchemy import Engine, or_, select

from integration_signals.cli.app import app, guarded, runtime
from integration_signals.cli.runtime import UserError, emit, parse_as_of
from integration_signals.store.models import Signal, Task
from integration_signals.store.sql import as_utc

JSON_OPT = typer.Option(False, "--json", help="Print one JSON document on stdout.")
AS_OF_OPT = typer.Option(None, "--as-of", help="The clock: RFC 3339 timestamp or date.")
BY_OPT = typer.Option(..., "--by", help="Who acts (Slack user id or e-mail).")
STATUSES = ("open", "claimed", "done", "snoozed")

tasks_app = typer.Typer(
    help="Playbook tasks: list them, or claim / done / snooze one.",
    invoke_without_command=True,
)
app.add_typer(tasks_app, name="tasks")


def list_signals(engine: Engine, *, as_of: datetime, recent_days: int) -> list[dict[str, Any]]:
    """Open episodes and those resolved within ``recent_days`` before ``as_of``."""
    s = Signal.__table__
    since = as_of - timedelta(days=recent_days)
    with engine.connect() as conn:
        rows = conn.execute(
            select(s)
            .where(s.c.fired_at <= as_of)
            .where(or_(s.c.status == "open", s.c.resolved_at >= since))
            .order_by(s.c.fired_at.desc(), s.c.id.desc())
        ).all()
    return [
        {
            "id": r.id,
            "account_id": r.account_id,
            "kind": r.kind,
            "subject": r.subject,
            "status": r.status,
            "fired_at": as_utc(r.fired_at),
            "resolved_at": as_utc(r.resolved_at),
            "details": r.details,
        }
        for r in rows
    ]


@app.command("signals")
@guarded
def signals_cmd(
    ctx: typer.Context,
    as_of: str | None = AS_OF_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """List open signals and those resolved in the last 30 days (configurable)."""
    rt = runtime(ctx)
    when = parse_as_of(as_of)
    items = list_signals(
        rt.engine, as_of=when, recent_days=rt.config.signals.recently_resolved_days
    )
    data = {
        "as_of": when,
        "open": sum(1 for i in items if i["status"] == "open"),
        "signals": items,
    }

    def render(d: dict[str, Any]) -> None:
        print(f"{d['open']} open signals as of {_short(d['as_of'])} UTC (and recently resolved)")
        for i in d["signals"]:
            state = f"resolved {_short(i['resolved_at'])}" if i["resolved_at"] else "open"
            print(
                f"#{i['id']:<5} {i['account_id']:<14} {i['kind']:<26} fired"
                f" {_short(i['fired_at'])}  {state:<26} {i['subject']}"
            )

    emit(data, as_json=as_json, render=render)


def task_json(task: Any, *, now: datetime) -> dict[str, Any]:
    due = as_utc(task.due_at)
    return {
        "id": task.id,
        "account_id": task.account_id,
        "signal_id": task.signal_id,
        "signal_kind": task.signal_kind,
        "title": task.title,
        "owner": task.owner,
        "due_at": due,
        "status": task.status,
        "claimed_by": task.claimed_by,
        "snoozed_until": as_utc(task.snoozed_until),
        "overdue": task.status in ("open", "claimed") and due is not None and due < now,
        "overdue_at": as_utc(task.overdue_at),
        "created_at": as_utc(task.created_at),
        "updated_at": as_utc(task.updated_at),
    }


def _short(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _render_tasks(d: dict[str, Any]) -> None:
    print(f"{len(d['tasks'])} tasks as of {_short(d['as_of'])} UTC")
    for t in d["tasks"]:
        status = t["status"] + (" (overdue)" if t["overdue"] else "")
        if t["status"] == "snoozed":
            status += f" until {_short(t['snoozed_until'])}"
        print(
            f"#{t['id']:<5} due {_short(t['due_at'])}  {status:<17} {t['owner'] or '-':<22}"
            f" {t['signal_kind']:<26} {t['title']}"
        )


@tasks_app.callback()
@guarded
def tasks_cmd(
    ctx: typer.Context,
    status: str | None = typer.Option(
        None, "--status", help="Only tasks with this status: open, claimed, done, snoozed."
    ),
    owner: str | None = typer.Option(None, "--owner", help="Only tasks owned by this person."),
    as_of: str | None = AS_OF_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """List playbook tasks (every status unless --status narrows it)."""
    if ctx.invoked_subcommand is not None:
        return
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(
            f"{status!r} is not a task status; use one of {', '.join(STATUSES)}",
            param_hint="--status",
        )
    rt = runtime(ctx)
    when = parse_as_of(as_of)
    t = Task.__table__
    q = select(t).where(t.c.created_at <= when)
    if status is not None:
        q = q.where(t.c.status == status)
    if owner is not None:
        q = q.where(t.c.owner == owner)
    with rt.engine.connect() as conn:
        rows = conn.execute(q.order_by(t.c.due_at, t.c.id)).all()
    data = {"as_of": when, "tasks": [task_json(r, now=when) for r in rows]}
    emit(data, as_json=as_json, render=_render_tasks)


def _act(ctx: typer.Context, action: str, task_id: int, by: str, as_of: str | None, **kw: Any):  # type: ignore[no-untyped-def]
    from integration_signals.scoring import tasks as task_ops

    rt = runtime(ctx)
    when = parse_as_of(as_of)
    operation = {"claim": task_ops.claim, "done": task_ops.done, "snooze": task_ops.snooze}[action]
    try:
        task = operation(rt.engine, task_id, by=by, now=when, **kw)
    except task_ops.TaskRefused as exc:
        raise UserError(str(exc)) from None
    return task_json(task, now=when)


def _render_one(d: dict[str, Any]) -> None:
    extra = f" until {_short(d['snoozed_until'])}" if d["status"] == "snoozed" else ""
    who = f" by {d['claimed_by']}" if d["claimed_by"] else ""
    print(f"task {d['id']} {d['status']}{who}{extra}: {d['title']}")


@tasks_app.command("claim")
@guarded
def claim_cmd(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="The task's id (from `signals tasks`)."),
    by: str = BY_OPT,
    as_of: str | None = AS_OF_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Claim a task (claiming your own claim again changes nothing)."""
    emit(_act(ctx, "claim", task_id, by, as_of), as_json=as_json, render=_render_one)


@tasks_app.command("done")
@guarded
def done_cmd(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="The task's id (from `signals tasks`)."),
    by: str = BY_OPT,
    as_of: str | None = AS_OF_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Mark a task done."""
    emit(_act(ctx, "done", task_id, by, as_of), as_json=as_json, render=_render_one)


@tasks_app.command("snooze")
@guarded
def snooze_cmd(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="The task's id (from `signals tasks`)."),
    by: str = BY_OPT,
    days: int = typer.Option(7, "--days", help="How many days to snooze (1-90)."),
    as_of: str | None = AS_OF_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Snooze a task; it returns to open when the time has passed."""
    emit(_act(ctx, "snooze", task_id, by, as_of, days=days), as_json=as_json, render=_render_one)
