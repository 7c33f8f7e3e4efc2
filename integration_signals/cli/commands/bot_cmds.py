"""`signals bot`: the Slack bot in HTTP mode (POST /slack/events) or Socket Mode
(`--socket`), and its scheduled jobs run by hand: post-tasks, remind, digest,
plus `manifest` to create the Slack app."""

from __future__ import annotations

from importlib import resources
from typing import Any

import typer

from integration_signals.cli.app import app, guarded, runtime
from integration_signals.cli.runtime import emit, parse_as_of, stderr

JSON_OPT = typer.Option(False, "--json", help="Print one JSON document on stdout.")
AS_OF_OPT = typer.Option(None, "--as-of", help="The clock: RFC 3339 timestamp or date.")

bot_app = typer.Typer(
    help="The Slack bot: `signals bot` (HTTP) or `signals bot --socket`; its jobs by hand.",
    invoke_without_command=True,
)
app.add_typer(bot_app, name="bot")


@bot_app.callback()
@guarded
def bot(
    ctx: typer.Context,
    socket: bool = typer.Option(
        False, "--socket", help="Socket Mode (local development; needs SLACK_APP_TOKEN)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP mode: interface to listen on."),
    port: int = typer.Option(3000, "--port", help="HTTP mode: port to listen on."),
) -> None:
    """Run the bot: HTTP mode serves POST /slack/events and GET /healthz; --socket
    connects to Slack over a websocket instead (no public URL needed)."""
    if ctx.invoked_subcommand is not None:
        return
    rt = runtime(ctx)
    if socket:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        from integration_signals.bot.app import build_app
        from integration_signals.schedules.compose import crm_links

        bolt = build_app(
            rt.engine,
            rt.config,
            rt.settings,
            socket_mode=True,
            crm_links=crm_links(rt.config, rt.settings),
        )
        assert rt.settings.slack_app_token is not None
        stderr.print("Slack bot in Socket Mode; Ctrl-C stops it")
        SocketModeHandler(bolt, rt.settings.slack_app_token.get_secret_value()).start()
        return
    import uvicorn

    from integration_signals.bot.app import build_app
    from integration_signals.bot.http import create_bot_app
    from integration_signals.schedules.compose import crm_links

    build_app(rt.engine, rt.config, rt.settings)  # refuse missing credentials up front
    stderr.print(f"Slack bot on http://{host}:{port}/slack/events; Ctrl-C stops it")
    links = crm_links(rt.config, rt.settings)
    uvicorn.run(
        create_bot_app(rt.engine, rt.config, rt.settings, crm_links=links), host=host, port=port
    )


def _render_run(what: str) -> Any:
    def render(d: dict[str, Any]) -> None:
        print(f"{what}: sent {d['sent']}, failed {d['failed']}, skipped {d['skipped']}")
        for error in d["errors"][:10]:
            print(f"  {error}")

    return render


@bot_app.command("post-tasks")
@guarded
def post_tasks(ctx: typer.Context, as_of: str | None = AS_OF_OPT, as_json: bool = JSON_OPT) -> None:
    """Post the playbook tasks not yet in Slack (each once) with their buttons."""
    from integration_signals.bot.tasks import post_pending_tasks

    rt = runtime(ctx)
    report = post_pending_tasks(rt.engine, rt.config, rt.settings, now=parse_as_of(as_of))
    emit(report.as_json(), as_json=as_json, render=_render_run("tasks posted"))


@bot_app.command("remind")
@guarded
def remind(ctx: typer.Context, as_of: str | None = AS_OF_OPT, as_json: bool = JSON_OPT) -> None:
    """Remind overdue tasks, once each, in their message's thread."""
    from integration_signals.bot.tasks import send_reminders

    rt = runtime(ctx)
    report = send_reminders(rt.engine, rt.config, rt.settings, now=parse_as_of(as_of))
    emit(report.as_json(), as_json=as_json, render=_render_run("reminders"))


@bot_app.command("digest")
@guarded
def digest(ctx: typer.Context, as_of: str | None = AS_OF_OPT, as_json: bool = JSON_OPT) -> None:
    """Post today's digest of new risks and expansion-ready accounts (once a day)."""
    from integration_signals.bot.tasks import send_digest

    rt = runtime(ctx)
    report = send_digest(rt.engine, rt.config, rt.settings, now=parse_as_of(as_of))
    emit(report.as_json(), as_json=as_json, render=_render_run("digest"))


@bot_app.command("manifest")
@guarded
def manifest(
    ctx: typer.Context,
    url: str = typer.Option(
        "https://example.com", "--url", help="Public base URL of `signals serve` / `signals bot`."
    ),
) -> None:
    """Print the Slack app manifest (YAML) with your request URL filled in; paste it
    at api.slack.com/apps -> Create New App -> From an app manifest."""
    command = runtime(ctx).config.bot.command
    text = (
        (resources.files("integration_signals.bot") / "manifest.yaml")
        .read_text("utf-8")
        .replace("https://example.com", url.rstrip("/"))
        .replace("command: /integration-health", f"command: {command}")
    )
    print(text, end="")
