"""Commands of the syncs layer: `sync <destination>` for every registered destination
(`salesforce`, `hubspot`), `sync history`, and `provision <destination>` for every
destination that can create its fields (`hubspot`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typer.main import get_command_from_info

from integration_signals.cli.app import Group, app, arrange, guarded, runtime
from integration_signals.cli.runtime import UserError, emit, parse_as_of, stderr
from integration_signals.store.jsonio import iso

if TYPE_CHECKING:
    from integration_signals.syncs.contract import Destination


class DestinationGroup(Group):
    """`signals sync` and `signals provision`: their commands, one per destination, are
    made when the group is first used (run, its help, completion), so `signals --help`
    and every other command do not import the destinations."""

    def _load(self) -> None:
        if getattr(self, "_loaded", False):
            return
        register_destination_commands()
        sub_app = {"sync": sync_app, "provision": provision_app}[self.name or ""]
        made = {}
        for info in sub_app.registered_commands:
            command = get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
            made[command.name] = command
        self.commands = {**made, **self.commands}
        self._loaded = True

    def list_commands(self, ctx: Any) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        self._load()
        return super().get_command(ctx, cmd_name)


sync_app = typer.Typer(
    cls=DestinationGroup,
    help="Write scores and segments into each CRM (reverse ETL); the history of runs.",
    no_args_is_help=True,
)
provision_app = typer.Typer(
    cls=DestinationGroup, help="Create the CRM fields the syncs write.", no_args_is_help=True
)
app.add_typer(sync_app, name="sync")
app.add_typer(provision_app, name="provision")

JSON_OPT = typer.Option(False, "--json", help="Print one JSON document on stdout.")
DRY_OPT = typer.Option(
    False, "--dry-run", help="Show each planned change; write nothing, move no ledger."
)
FULL_OPT = typer.Option(False, "--full", help="Ignore the ledger: write every matched record.")
FORCE_OPT = typer.Option(
    False, "--force", help="Write even when more records change band than the guard allows."
)
AS_OF_OPT = typer.Option(None, "--as-of", help="The run's timestamp (default now).")
# Its help names the destinations, filled in when they are registered.
DESTINATION_OPT = typer.Option(None, "--destination", help="")


def render_sync(d: dict[str, Any]) -> None:
    title = "dry run" if d["dry_run"] else d["status"]
    print(
        f"{d['destination']} ({title}): planned {d['planned']:,}  written {d['written']:,}  "
        f"unchanged {d['unchanged']:,}  failed {d['failed']:,}  unmatched {d['unmatched']:,}  "
        f"api calls {d['api_calls']:,}"
    )
    for change in d["changes"][:20]:
        accounts = ", ".join(change["account_ids"])
        print(f"  {change['record_id']} ({accounts})")
        for name, ch in change["fields"].items():
            old = "-" if ch["old"] is None else ch["old"] or "(empty)"
            print(f"      {name}: {old} -> {ch['new'] or '(empty)'}")
    if len(d["changes"]) > 20 or d["planned"] > len(d["changes"]):
        print(f"  ... {d['planned'] - min(20, len(d['changes'])):,} more (see --json)")
    for f in d["failures"][:10]:
        print(f"  failed {f['account_id']} ({f['record_id']}): {f['error']}")
    if len(d["failures"]) > 10:
        print(f"  ... {len(d['failures']) - 10:,} more failures (see --json)")
    for u in d["unmatched_accounts"][:5]:
        print(f"  unmatched {u['account_id']}: {u['reason']}")
    if d["unmatched"] > 5:
        print(f"  ... {d['unmatched'] - 5:,} more unmatched (see --json)")
    if d["blocked"] and d["dry_run"]:
        print(f"  note: a real run would stop: {d['blocked']}")
    if d["error"] and d["dry_run"]:
        print(f"  note: {d['error']}")


def _sync(
    ctx: typer.Context,
    destination: str,
    dry_run: bool,
    full: bool,
    force: bool,
    as_of: str | None,
    as_json: bool,
) -> None:
    from integration_signals.syncs.run import run_sync

    rt = runtime(ctx)
    now = parse_as_of(as_of)
    with Progress(
        TextColumn(f"sync {destination}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    ) as bar:
        task = bar.add_task("sync", total=None)
        report = run_sync(
            rt.engine,
            rt.config,
            rt.settings,
            destination,
            dry_run=dry_run,
            full=full,
            force=force,
            now=now,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    data = report.as_json()
    emit(data, as_json=as_json, render=render_sync)
    if not report.ok:
        raise UserError(f"sync {destination} {report.status}: {report.error}")


def _register_sync_command(dest: Destination) -> None:
    """`signals sync <destination>`: one command per registered destination."""
    destination = dest.name

    @sync_app.command(destination, help=f"Write scores and segments into {dest.target}.")
    @guarded
    def sync_command(
        ctx: typer.Context,
        dry_run: bool = DRY_OPT,
        full: bool = FULL_OPT,
        force: bool = FORCE_OPT,
        as_of: str | None = AS_OF_OPT,
        as_json: bool = JSON_OPT,
    ) -> None:
        _sync(ctx, destination, dry_run, full, force, as_of, as_json)


@guarded
def sync_history(
    ctx: typer.Context,
    destination: str | None = DESTINATION_OPT,
    limit: int = typer.Option(20, "--limit", min=1, max=1000),
    as_json: bool = JSON_OPT,
) -> None:
    """Every sync run: when, what it planned, wrote, failed, and API calls used."""
    from integration_signals.scoring.views import sync_history as history_view

    # The same view model as the dashboard's /syncs page (its --json adds "seconds").
    runs = history_view(runtime(ctx).engine, destination=destination, limit=limit)["runs"]

    def render(d: dict[str, Any]) -> None:
        if not d["runs"]:
            print("no sync runs yet; try `signals sync hubspot --dry-run`")
        for r in d["runs"]:
            kind = " dry-run" if r["dry_run"] else ""
            print(
                f"#{r['run_id']} {iso(r['started_at'])} {r['destination']}{kind} {r['status']}:"
                f" planned {r['planned']} written {r['written']} unchanged {r['unchanged']}"
                f" failed {r['failed']} unmatched {r['unmatched']} api calls {r['api_calls']}"
                + (f" — {r['error']}" if r["error"] else "")
            )

    emit({"runs": runs}, as_json=as_json, render=render)


def render_provision(d: dict[str, Any]) -> None:
    if "group" in d:
        group = "created" if d.get("group_created") else "exists"
        print(f"property group {d['group']}: {group}")
    print(f"created {len(d.get('created') or [])}: {', '.join(d.get('created') or []) or '-'}")
    existing = d.get("existing") or []
    print(f"already there {len(existing)}: {', '.join(existing) or '-'}")


def _register_provision_command(dest: Destination) -> None:
    """`signals provision <destination>` for a destination that can create its fields."""
    provision = dest.provision
    assert provision is not None

    @provision_app.command(
        dest.name, help=f"Create the {dest.target} the sync writes, when missing (idempotent)."
    )
    @guarded
    def provision_command(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
        from integration_signals.syncs.exceptions import SyncError
        from integration_signals.syncs.registry import redact

        rt = runtime(ctx)
        try:
            report = provision(rt.config, rt.settings)
        except SyncError as exc:
            message = redact(exc.message, rt.settings)
            raise UserError(f"provision {dest.name} failed: {message}") from None
        emit(report.as_json(), as_json=as_json, render=render_provision)

    provision_command.__name__ = f"provision_{dest.name}"


_registered = False
_lock = threading.Lock()


def register_destination_commands() -> None:
    """`sync <destination>` and `provision <destination>` for every registered
    destination, then `sync history` (once per process)."""
    global _registered
    with _lock:
        if _registered:
            return
        from integration_signals.syncs.registry import destinations

        DESTINATION_OPT.help = " or ".join(d.name for d in destinations()) + "."
        for dest in destinations():
            _register_sync_command(dest)
        sync_app.command("history")(sync_history)
        for dest in destinations():
            if dest.provision is not None:
                _register_provision_command(dest)
        arrange(sync_app)
        arrange(provision_app)
        _registered = True
