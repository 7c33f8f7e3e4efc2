"""Commands over signals and playbook tasks: `signals signals`, `signals tasks`,
`signals tasks claim|done|snooze`. They report and act on tasks; the rules themselves
are evaluated by scoring runs (`signals score`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.text import Text

from integration_signals.cli import filters
from integration_signals.cli.app import app, guarded, runtime
from integration_signals.cli.filters import more_line
from integration_signals.cli.runtime import UserError, emit, parse_as_of
from integration_signals.cli.tables import Col, print_groups, print_table

if TYPE_CHECKING:
    from sqlalchemy import Engine

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
    """Open episodes and those resolved within ``recent_days`` before ``as_of``, each
    with its account's name, the reason in words (its task's title), how long it has
    been open, and its task."""
    from sqlalchemy import select

    from integration_signals.scoring.episodes import episodes_as_of
    from integration_signals.scoring.rules import task_title
    from integration_signals.scoring.tasks import band_at
    from integration_signals.store.models import Account, AccountScore, Task
    from integration_signals.store.sql import as_utc

    a, t, sc = Account.__table__, Task.__table__, AccountScore.__table__
    with engine.connect() as conn:
        rows = episodes_as_of(conn, as_of, recent_days=recent_days)
        ids = [r["id"] for r in rows]
        accounts: dict[str, Any] = {}
        wanted = sorted({r["account_id"] for r in rows})
        for start in range(0, len(wanted), 500):
            for acct in conn.execute(
                select(
                    a.c.account_id,
                    a.c.name,
                    a.c.segment,
                    a.c.csm,
                    a.c.owner,
                    band_at(a.c.account_id, as_of).label("band"),  # the band then
                )
                .select_from(a.outerjoin(sc, sc.c.account_id == a.c.account_id))
                .where(a.c.account_id.in_(wanted[start : start + 500]))
            ):
                accounts[acct.account_id] = acct
        tasks: dict[int, Any] = {}
        for start in range(0, len(ids), 500):
            for task in conn.execute(
                select(t).where(t.c.signal_id.in_(ids[start : start + 500])).order_by(t.c.id)
            ):
                tasks.setdefault(task.signal_id, task)
    items = []
    for r in rows:
        details = r["details"]
        fired, resolved = r["fired_at"], r["resolved_at"]
        acct = accounts.get(r["account_id"])
        name = (acct.name if acct is not None else None) or (
            r["account_id"] if r["account_id"] != "*" else "all accounts"
        )
        task = tasks.get(r["id"])
        try:
            reason = task_title(r["kind"], details, account_name=name)
        except (KeyError, TypeError, ValueError):  # details of an older rule version
            reason = task.title if task is not None else r["kind"].replace("_", " ")
        items.append(
            {
                "id": r["id"],
                "account_id": r["account_id"],
                "kind": r["kind"],
                "subject": r["subject"],
                "status": r["status"],
                "fired_at": fired,
                "resolved_at": resolved,
                "details": details,
                "account_name": name,
                "account_segment": acct.segment if acct is not None else None,
                "account_band": acct.band if acct is not None else None,
                "integration": details.get("integration"),
                "integration_name": details.get("integration_name"),
                "reason": reason,
                "open_for_days": ((resolved or as_of) - fired).days,
                "open_for_hours": round(((resolved or as_of) - fired).total_seconds() / 3600, 1),
                "task": None
                if task is None
                else {
                    "id": task.id,
                    "status": task.status,
                    "owner": task.owner,
                    "claimed_by": task.claimed_by,
                    "due_at": as_utc(task.due_at),
                    "title": task.title,
                },
                "account_csm": acct.csm if acct is not None else None,
                "account_owner": acct.owner if acct is not None else None,
            }
        )
    return items


SIGNAL_SORTS: dict[str, Any] = {
    "fired": lambda i: (i["fired_at"], i["id"]),
    "account": lambda i: (i["account_name"] or "").lower(),
    "kind": lambda i: i["kind"],
    "open": lambda i: i["open_for_hours"],
    "integration": lambda i: (i["integration_name"] or "").lower(),
}
GROUPS = ("account", "kind")
SIGNAL_COLUMNS = (
    Col("#", priority=5, justify="right"),
    Col("account"),
    Col("integration", priority=2),
    Col("signal", priority=4),
    Col("reason", flex=True, min_width=40),
    Col("status"),
    Col("task", priority=1),
    Col("owner", priority=3),
)


def _for(hours: float) -> str:
    if hours < 1:
        return "<1 hour"
    if hours < 48:
        return f"{hours:.0f} hour{'s' if round(hours) != 1 else ''}"
    days = int(hours // 24)
    return f"{days} days"


def _signal_row(i: dict[str, Any]) -> list[Text]:
    task = i["task"]
    if i["resolved_at"]:
        state = Text(f"resolved after {_for(i['open_for_hours'])}", style="dim")
    else:
        state = Text(f"open {_for(i['open_for_hours'])}")
    return [
        Text(f"#{i['id']}"),
        Text(i["account_name"]),
        Text(i["integration_name"] or "–"),
        Text(i["kind"]),
        Text(i["reason"]),
        state,
        Text("–" if task is None else f"#{task['id']} {task['status']}"),
        Text("–" if task is None else task["claimed_by"] or task["owner"] or "–"),
    ]


def render_signals(
    d: dict[str, Any],
    *,
    group_by: str | None = None,
    wide: bool = False,
    console: Console | None = None,
) -> None:
    """Signals as a table (or one table per account or kind), fitted to the terminal."""
    console = console or Console(highlight=False)
    console.print(
        f"{d['open']} open signals as of {_short(d['as_of'])} UTC (and recently resolved)",
        highlight=False,
    )
    items = d["signals"]
    if group_by is None:
        print_table(SIGNAL_COLUMNS, [_signal_row(i) for i in items], wide=wide, console=console)
    else:
        drop = 1 if group_by == "account" else 3  # the column the title already says
        cols = [c for n, c in enumerate(SIGNAL_COLUMNS) if n != drop]
        groups: dict[str, list[list[Text]]] = {}
        for i in items:
            label = (
                f"{i['account_name']} ({i['account_id']})"
                if group_by == "account"
                else i["kind"].replace("_", " ")
            )
            row = _signal_row(i)
            groups.setdefault(label, []).append([c for n, c in enumerate(row) if n != drop])
        print_groups(
            cols,
            [(f"{label}: {len(rows)}", rows) for label, rows in groups.items()],
            wide=wide,
            console=console,
        )
    more = more_line(len(items), d.get("matched", len(items)), "signals")
    if more:
        console.print(more, highlight=False)


@app.command("signals")
@guarded
def signals_cmd(
    ctx: typer.Context,
    band: str | None = filters.BAND_OPT,
    segment: str | None = filters.SEGMENT_OPT,
    owner: str | None = typer.Option(
        None,
        "--owner",
        help="Only signals whose task owner, account CSM or account executive is this person.",
    ),
    kind: str | None = typer.Option(None, "--kind", help="Only this kind, e.g. abandonment."),
    sort: str | None = typer.Option(
        None,
        "--sort",
        help="Order by fired, account, kind, open or integration; prefix - for descending"
        " (default: newest first).",
    ),
    group_by: str | None = typer.Option(
        None, "--group-by", help="One table per account or per kind."
    ),
    limit: int | None = filters.LIMIT_OPT,
    wide: bool = filters.WIDE_OPT,
    as_of: str | None = AS_OF_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """List open signals and those resolved in the last 30 days (configurable): the
    account, the integration, the reason in words, how long it has been open, its task."""
    from integration_signals.scoring.rules import KINDS

    wanted_band, wanted_segment = filters.band(band), filters.segment(segment)
    order = filters.sort_key(sort, SIGNAL_SORTS)
    if group_by is not None and group_by not in GROUPS:
        raise typer.BadParameter(
            f"{group_by!r} is not a grouping; use account or kind", param_hint="--group-by"
        )
    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(
            f"{kind!r} is not a signal kind; use one of {', '.join(KINDS)}", param_hint="--kind"
        )
    rt = runtime(ctx)
    when = parse_as_of(as_of)
    items = list_signals(
        rt.engine, as_of=when, recent_days=rt.config.signals.recently_resolved_days
    )
    open_count = sum(1 for i in items if i["status"] == "open")
    items = [
        i
        for i in items
        if (wanted_band is None or i["account_band"] == wanted_band)
        and (wanted_segment is None or i["account_segment"] == wanted_segment)
        and (kind is None or i["kind"] == kind)
        and filters.same_person(
            owner, i["account_csm"], i["account_owner"], (i["task"] or {}).get("owner")
        )
    ]
    if order is not None:
        key, reverse = order
        items.sort(key=key, reverse=reverse)
    if group_by is not None:
        group_key = SIGNAL_SORTS["account" if group_by == "account" else "kind"]
        items.sort(key=group_key)  # stable: the order within a group stays
    data = {
        "as_of": when,
        "open": open_count,
        "signals": filters.limited(items, limit, as_json=as_json),
        "matched": len(items),
    }
    emit(
        data,
        as_json=as_json,
        render=lambda d: render_signals(d, group_by=group_by, wide=wide),
    )


def task_json(task: Any, *, now: datetime) -> dict[str, Any]:
    from integration_signals.store.sql import as_utc

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


TASK_SORTS: dict[str, Any] = {
    "due": lambda t: (t["due_at"] is None, t["due_at"] or 0, t["id"]),
    "created": lambda t: (t["created_at"], t["id"]),
    "account": lambda t: (t["account_name"] or t["account_id"]).lower(),
    "owner": lambda t: (t["owner"] or "").lower(),
    "status": lambda t: STATUSES.index(t["status"]) if t["status"] in STATUSES else 9,
}
TASK_COLUMNS = (
    Col("#", justify="right"),
    Col("due"),
    Col("status"),
    Col("owner", priority=2),
    Col("account", priority=1),
    Col("signal", priority=3),
    Col("title", flex=True, min_width=30),
)


def render_tasks(d: dict[str, Any], *, wide: bool = False, console: Console | None = None) -> None:
    """The task table, fitted to the terminal."""
    console = console or Console(highlight=False)
    count = d.get("matched", len(d["tasks"]))
    console.print(f"{count} tasks as of {_short(d['as_of'])} UTC", highlight=False)
    rows = []
    for t in d["tasks"]:
        status = t["status"] + (" (overdue)" if t["overdue"] else "")
        if t["status"] == "snoozed":
            status += f" until {_short(t['snoozed_until'])}"
        rows.append(
            [
                Text(f"#{t['id']}"),
                Text(_short(t["due_at"])),
                Text(status, style="red" if t["overdue"] else ""),
                Text(t["owner"] or "-"),
                Text(t.get("account_name") or t["account_id"]),
                Text(t["signal_kind"]),
                Text(t["title"]),
            ]
        )
    print_table(TASK_COLUMNS, rows, wide=wide, console=console)
    more = more_line(len(d["tasks"]), d.get("matched", len(d["tasks"])), "tasks")
    if more:
        console.print(more, highlight=False)


@tasks_app.callback()
@guarded
def tasks_cmd(
    ctx: typer.Context,
    status: str | None = typer.Option(
        None, "--status", help="Only tasks with this status: open, claimed, done, snoozed."
    ),
    owner: str | None = typer.Option(None, "--owner", help="Only tasks owned by this person."),
    band: str | None = filters.BAND_OPT,
    segment: str | None = filters.SEGMENT_OPT,
    sort: str | None = typer.Option(
        None,
        "--sort",
        help="Order by due, created, account, owner or status; prefix - for descending"
        " (default: due soonest first).",
    ),
    limit: int | None = filters.LIMIT_OPT,
    wide: bool = filters.WIDE_OPT,
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
    wanted_band, wanted_segment = filters.band(band), filters.segment(segment)
    order = filters.sort_key(sort, TASK_SORTS)
    rt = runtime(ctx)
    when = parse_as_of(as_of)
    from types import SimpleNamespace

    from integration_signals.scoring.tasks import tasks_as_of

    with rt.engine.connect() as conn:
        rows = [
            SimpleNamespace(**r)
            for r in tasks_as_of(conn, as_of=when, statuses=None if status is None else (status,))
        ]
    tasks = [
        {
            **task_json(r, now=when),
            "account_name": r.account_name,
            "account_segment": r.account_segment,
            "account_band": r.account_band,
        }
        for r in rows
        if filters.same_person(owner, r.owner)
        and (wanted_band is None or r.account_band == wanted_band)
        and (wanted_segment is None or r.account_segment == wanted_segment)
    ]
    if order is not None:
        key, reverse = order
        tasks.sort(key=key, reverse=reverse)
    data = {
        "as_of": when,
        "tasks": filters.limited(tasks, limit, as_json=as_json),
        "matched": len(tasks),
    }
    emit(data, as_json=as_json, render=lambda d: render_tasks(d, wide=wide))


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
