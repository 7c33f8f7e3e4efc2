"""The Bolt app: thin listeners that acknowledge at once and then call domain code.

Every listener calls ``ack()`` first (Slack's 3-second limit), then answers through
``respond`` (the request's response_url) or ``chat.update``. Failures take one path,
`report_failure`, from the ``@app.error`` handler and from the work after an ack: the
trace goes to the server log under a short reference, the person sees only the
reference, never a trace.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine

from integration_signals.bot import blocks, views
from integration_signals.bot.client import require, slack_client
from integration_signals.bot.tasks import render_task
from integration_signals.config import Config, Settings
from integration_signals.scoring.exceptions import TaskRefused
from integration_signals.scoring.tasks import claim, done, snooze

log = logging.getLogger("signals.bot")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def report_failure(error: BaseException, respond: Any | None) -> None:
    """The one way a failure is told: the trace to the server log under a short
    reference, and to the person only that it failed, with that reference."""
    ref = uuid.uuid4().hex[:8]
    log.error("slack request failed (ref %s)", ref, exc_info=error)
    if respond is None:
        return
    try:
        respond(
            replace_original=False,
            response_type="ephemeral",
            **blocks.notice(
                f"Sorry, that did not work on our side (ref {ref}). "
                "The details are in the server log; try again in a minute."
            ),
        )
    except Exception:  # telling the user must never raise in turn
        log.warning("could not tell the user about ref %s", ref)


def after_ack(respond: Any, work: Callable[[], None]) -> None:
    """Run a listener's work after its ack. A failure here is reported by
    `report_failure` directly: Bolt's runner can lose the ack's 200 when a listener
    raises right after acknowledging (the HTTP answer turns into a 500)."""
    try:
        work()
    except Exception as exc:  # the listener boundary: nothing escapes to Slack
        report_failure(exc, respond)


def build_app(
    engine: Engine,
    config: Config,
    settings: Settings,
    *,
    socket_mode: bool = False,
    clock: Clock = _utcnow,
    crm_links: views.CrmLinks = views.NO_LINKS,
) -> App:
    """The Bolt app. HTTP mode verifies every request with ``SLACK_SIGNING_SECRET``
    (bad, missing or more than 5 minutes old -> 401, nothing runs); Socket Mode
    needs no signing secret because Slack's websocket authenticates the app."""
    if socket_mode:
        require(settings, "slack_bot_token", "slack_app_token")
    else:
        require(settings, "slack_bot_token", "slack_signing_secret")
    signing_secret = settings.slack_signing_secret
    # The listeners call Slack through this client, not Bolt's per-request copy (a
    # plain WebClient): its answers are redacted of our secrets as they arrive.
    slack = slack_client(settings)
    app = App(
        client=slack,
        signing_secret=signing_secret.get_secret_value() if signing_secret else None,
        request_verification_enabled=not socket_mode,
        token_verification_enabled=False,  # no network call at start-up
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("signals.bot.bolt"),
    )
    respond_as = config.bot.response_type

    @app.command(config.bot.command)
    def integration_health(ack: Any, command: dict[str, Any], respond: Any) -> None:
        parsed = views.parse_command(command.get("text"))
        if parsed.kind == "help":
            ack(response_type="ephemeral", **blocks.help_message(config.bot.command))
            return
        ack()
        after_ack(
            respond,
            lambda: respond(
                response_type=respond_as,
                **views.answer(
                    engine,
                    config,
                    settings,
                    parsed,
                    channel_id=command.get("channel_id"),
                    now=clock(),
                    crm_links=crm_links,
                ),
            ),
        )

    @app.action(re.compile(f"^{blocks.PICK_ACCOUNT}"))
    def pick_account(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        ack()
        after_ack(
            respond,
            lambda: respond(
                replace_original=True,
                response_type=respond_as,
                **views.answer_pick(
                    engine,
                    config,
                    settings,
                    str(action.get("value") or ""),
                    channel_id=(body.get("channel") or {}).get("id"),
                    now=clock(),
                    crm_links=crm_links,
                ),
            ),
        )

    def task_button(change: Callable[..., Any]) -> Callable[..., None]:
        def listener(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
            ack()
            after_ack(respond, lambda: click(body, action, respond))

        def click(body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
            try:
                task_id = int(str(action.get("value")))
            except ValueError:
                respond(
                    replace_original=False,
                    response_type="ephemeral",
                    **blocks.notice("That button is not a task."),
                )
                return
            now = clock()
            refused = None
            try:
                change(engine, task_id, by=body["user"]["id"], now=now)
            except TaskRefused as exc:
                refused = str(exc)
            _refresh(body, task_id, now)
            if refused:
                respond(
                    replace_original=False,
                    response_type="ephemeral",
                    **blocks.notice(refused, mention_users=True),
                )

        listener.__name__ = f"task_{change.__name__}"
        return listener

    def _refresh(body: dict[str, Any], task_id: int, now: datetime) -> None:
        """Show the task as it is now on the message that was clicked (a stale
        message catches up too)."""
        rendered = render_task(engine, task_id, now=now)
        container = body.get("container") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        ts = container.get("message_ts")
        if rendered is None or not channel or not ts:
            return
        try:
            slack.chat_update(channel=channel, ts=ts, **rendered)
        except SlackApiError as exc:
            log.warning("chat.update of task %s failed: %s", task_id, exc.response.get("error"))

    app.action(blocks.TASK_CLAIM)(task_button(claim))
    app.action(blocks.TASK_DONE)(task_button(done))
    app.action(blocks.TASK_SNOOZE)(task_button(snooze))

    @app.error
    def on_error(error: Exception, body: dict[str, Any], respond: Any) -> None:
        has_url = isinstance(body, dict) and bool(body.get("response_url"))
        report_failure(error, respond if has_url else None)

    return app
