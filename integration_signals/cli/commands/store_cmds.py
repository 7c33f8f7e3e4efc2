"""Commands over the store: init, ingest, accounts import, quarantine, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from integration_signals.cli.app import app, guarded, runtime
from integration_signals.cli.runtime import UserError, emit, stderr

accounts_app = typer.Typer(help="Account data: import from CSV or JSON.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")

JSON_OPT = typer.Option(False, "--json", help="Print one JSON document on stdout.")


@app.command()
@guarded
def init(
    path: Path = typer.Option(Path("signals.toml"), "--path", help="Where to write the config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    as_json: bool = JSON_OPT,
) -> None:
    """Write an example config file (the built-in defaults) to edit."""
    from integration_signals.config import default_config_text

    if path.exists() and not force:
        raise UserError(f"{path} exists; pass --force to overwrite it")
    path.write_text(default_config_text(), "utf-8")
    emit(
        {"config": str(path), "hint": f"export SIGNALS_CONFIG={path}"},
        as_json=as_json,
        render=lambda d: stderr.print(
            f"wrote {d['config']}; point SIGNALS_CONFIG at it: {d['hint']}"
        ),
    )


def _ingest_progress(total: int) -> Progress:
    return Progress(
        TextColumn("ingest"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal or total < 5_000_000,
    )


@app.command()
@guarded
def ingest(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="JSONL or CSV event files."),
    score: bool | None = typer.Option(
        None,
        "--score/--no-score",
        help="Rescore the touched accounts as of now (default: [ingest] rescore). Loading"
        " history: --no-score, then `signals replay --from DAY`.",
        show_default=False,
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Ingest event files. Duplicates count once; bad lines are quarantined, not fatal."""
    from integration_signals.store.ingest import ingest_paths

    rt = runtime(ctx)
    for path in files:
        if not path.is_file():
            raise UserError(f"{path}: no such file; give the path of a JSONL or CSV event file")
    total = sum(p.stat().st_size for p in files)
    with _ingest_progress(total) as progress:
        task = progress.add_task("ingest", total=total)
        report = ingest_paths(
            rt.engine,
            rt.config,
            files,
            progress=lambda done: progress.update(task, completed=done),
        )
    from integration_signals.schedules.pipeline import after_ingest
    from integration_signals.store.sql import utcnow

    data = report.as_json()
    if not (rt.config.ingest.rescore if score is None else score):
        # Store only (a backfill): `signals replay` evaluates the history day by day.
        data["after_ingest"] = {"accounts": len(report.touched_accounts), "rescored": None}
        emit(data, as_json=as_json, render=_render_ingest)
        return
    # Rescore the accounts the events touched and evaluate their signals at once; a
    # failure there is reported, and the next `signals score` rescores them.
    data["after_ingest"] = after_ingest(rt.engine, rt.config, report, now=utcnow())
    if "error" in data["after_ingest"]:
        stderr.print(
            f"warning: events stored, but rescoring the touched accounts failed"
            f" ({data['after_ingest']['error']}); `signals score` will rescore them",
            markup=False,
        )
    emit(data, as_json=as_json, render=_render_ingest)


def _render_ingest(data: dict[str, Any]) -> None:
    print(
        f"accepted {data['accepted']:,}  duplicates {data['duplicates']:,}  "
        f"quarantined {data['quarantined']:,}"
    )
    after = data.get("after_ingest") or {}
    if after.get("rescored") is not None and after.get("accounts"):
        print(f"rescored {after['rescored']:,} of {after['accounts']:,} accounts touched")
    elif after.get("accounts"):
        print(
            f"stored only ({after['accounts']:,} accounts touched, not rescored):"
            " `signals replay --from DAY` builds their history"
        )
    if data["new_integrations"]:
        print(
            "new integrations (added as other/daily; add them to the catalog): "
            + ", ".join(data["new_integrations"])
        )
    if data["quarantined"]:
        for sample in data["quarantine_samples"][:5]:
            print(f"  {sample['source']}:{sample['line']}: {sample['reason']}")
        print("see them all with `signals quarantine`")


@accounts_app.command("import")
@guarded
def accounts_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV, JSON array or JSONL of accounts."),
    as_json: bool = JSON_OPT,
) -> None:
    """Import or update accounts; unknown columns land in traits."""
    from integration_signals.store.accounts import import_accounts

    if not file.is_file():
        raise UserError(f"{file}: no such file; give the path of a CSV or JSON account file")
    report = import_accounts(runtime(ctx).engine, file)

    def render(d: dict[str, Any]) -> None:
        print(
            f"imported {d['imported']:,} (created {d['created']:,}, updated {d['updated']:,}),"
            f" quarantined {d['quarantined']:,}"
        )
        for p in d["problems"][:10]:
            print(f"  {file.name}:{p['line']}: {p['reason']}")

    emit(report.as_json(), as_json=as_json, render=render)


@app.command()
@guarded
def quarantine(
    ctx: typer.Context,
    limit: int = typer.Option(100, "--limit", help="Show at most this many lines."),
    as_json: bool = JSON_OPT,
) -> None:
    """List input lines set aside and why."""
    from sqlalchemy import func, select

    from integration_signals.store.models import Quarantine

    rt = runtime(ctx)
    t = Quarantine.__table__
    with rt.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(t)).scalar_one()
        rows = conn.execute(
            select(t.c.source, t.c.line_no, t.c.reason, t.c.raw, t.c.received_at)
            .order_by(t.c.received_at, t.c.source, t.c.line_no)
            .limit(limit)
        ).all()
    data = {
        "total": total,
        "items": [
            {
                "source": r.source,
                "line": r.line_no,
                "reason": r.reason,
                "raw": r.raw,
                "received_at": r.received_at,
            }
            for r in rows
        ],
    }

    def render(d: dict[str, Any]) -> None:
        table = Table(title=f"quarantine: {d['total']:,} lines")
        for col in ("source", "line", "reason", "raw"):
            table.add_column(col, overflow="fold")
        for item in d["items"]:
            table.add_row(item["source"], str(item["line"]), item["reason"], item["raw"][:80])
        from rich.console import Console

        Console().print(table)

    emit(data, as_json=as_json, render=render)


@app.command()
@guarded
def demo(
    ctx: typer.Context,
    accounts: int = typer.Option(300, "--accounts", help="How many accounts to generate."),
    seed: int = typer.Option(7, "--seed", help="Random seed (same seed, same data)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Build the demo data set and run one full cycle on it (no credentials, no network)."""
    from integration_signals.cli.demo_cycle import run_demo

    rt = runtime(ctx)
    result = run_demo(rt, accounts=accounts, seed=seed, as_json=as_json)
    emit(result.data, as_json=as_json, render=result.render)
