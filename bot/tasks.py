"""Playbook tasks in Slack: posting each task once, reminding overdue ones once, the
daily digest, and re-rendering a task's message after a click.

"Once" holds across processes: each run first claims its row with one conditional
UPDATE (posted_at / reminded_at) or a key insert (the digest), and only the process
whose statement changed the row talks to Slack. A failed call releases the claim so
the next run retries; a crash between claiming and posting is retried once the
lease (``bot.post_lease_minutes``) has passed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, and_, delete, or_, select, update

from integration_signals.bot import blocks
from integration_signals.bot.client import slack_client
from integration_signals.bot.views import allowed_accounts
from integration_signals.config import Config, Settings
from integration_signals.store.models import (
    Account,
    AccountScore,
    KeyValue,
    Signal,
    Task,
    TaskEvent,
)
from integration_signals.store.sql import insert_for

log = logging.getLogger("signals.bot")

RISK_KINDS = (
    "health_degradation",
    "abandonment",
    "auth_expired",
    "onboarding_no_first_sync",
    "onboarding_low_activation",
)
EXPANSION_KINDS = ("integration_activated", "api_limit_proximity")
BOT_ACTOR = "bot"


@dataclass
class SlackRunReport:
    """What one run did: how many messages went out, failed or had nowhere to go."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "errors": self.errors[:50],
        }


def _slack_error(exc: SlackApiError) -> str:
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    return str(data.get("error") or f"HTTP {exc.response.status_code}")


# ---------------------------------------------------------------- rendering a task


def task_view(engine: Engine, task_id: int) -> dict[str, Any] | None:
    """A task row plus what its message shows: account name, the owner's Slack id
    (recorded when posted), who made the current status and when."""
    t, a, e = Task.__table__, Account.__table__, TaskEvent.__table__
    with engine.connect() as conn:
        row = conn.execute(
            select(t, a.c.name.label("account_name"))
            .select_from(t.outerjoin(a, a.c.account_id == t.c.account_id))
            .where(t.c.id == task_id)
        ).first()
        if row is None:
            return None
        view = dict(row._mapping)
        events = conn.execute(
            select(e.c.actor, e.c.action, e.c.at, e.c.from_status, e.c.to_status, e.c.note)
            .where(e.c.task_id == task_id)
            .order_by(e.c.at, e.c.id)
        ).all()
    for ev in events:
        if ev.action == "posted" and ev.note:
            view["owner_slack"] = ev.note
        if ev.to_status == view["status"] and ev.from_status != ev.to_status:
            view["changed_at"] = ev.at
            if view["status"] == "done":
                view["done_by"] = ev.actor
    return view


def render_task(engine: Engine, task_id: int, *, now: datetime) -> dict[str, Any] | None:
    view = task_view(engine, task_id)
    return blocks.task_message(view, now=now) if view else None


def refresh_task_message(
    engine: Engine,
    settings: Settings,
    task_id: int,
    *,
    now: datetime,
    client: WebClient | None = None,
) -> bool:
    """Show a task as it is now on its posted Slack message (``chat.update`` on the
    stored ``slack_channel`` / ``slack_ts``, rendered like a button click renders it),
    after it changed outside Slack — in the web dashboard. Never raises: a task not
    posted, Slack not configured or a failed call is logged. True when updated."""
    try:
        view = task_view(engine, task_id)
        if view is None or not view.get("slack_channel") or not view.get("slack_ts"):
            return False
        if settings.slack_bot_token is None:
            log.info("task %s changed; Slack is not configured, its message stays", task_id)
            return False
        client = client or slack_client(settings)
        client.chat_update(
            channel=view["slack_channel"],
            ts=view["slack_ts"],
            **blocks.task_message(view, now=now),
        )
        return True
    except SlackApiError as exc:
        log.warning("chat.update of task %s failed: %s", task_id, _slack_error(exc))
    except Exception:  # a hook of the web: a failure here must not fail the page
        log.exception("refreshing the Slack message of task %s failed", task_id)
    return False


# ---------------------------------------------------------------- posting


class _Owners:
    """Owner (Slack id or e-mail) -> Slack user id, looked up once per run."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self.cache: dict[str, str | None] = {}

    def slack_id(self, owner: str | None) -> str | None:
        if not owner:
            return None
        owner = owner.strip()
        if blocks.SLACK_USER.match(owner):
            return owner
        if "@" not in owner:
            return None
        if owner not in self.cache:
            try:
                found = self.client.users_lookupByEmail(email=owner)
                self.cache[owner] = found["user"]["id"]
            except SlackApiError as exc:
                log.info("owner %s not resolved: %s", owner.split("@")[-1], _slack_error(exc))
                self.cache[owner] = None
        return self.cache[owner]


def _destination(
    client: WebClient, config: Config, settings: Settings, owner_id: str | None
) -> str | None:
    if config.bot.tasks_to == "owner" and owner_id:
        try:
            opened = client.conversations_open(users=owner_id)
            return str(opened["channel"]["id"])
        except SlackApiError as exc:
            log.warning(
                "cannot open a DM with %s (%s); using the channel", owner_id, _slack_error(exc)
            )
    return settings.slack_tasks_channel


def _pending(t: Any, lease_start: datetime) -> Any:
    return or_(
        t.c.posted_at.is_(None),
        and_(t.c.slack_ts.is_(None), t.c.posted_at < lease_start),
    )


def post_pending_tasks(
    engine: Engine,
    config: Config,
    settings: Settings,
    *,
    now: datetime,
    client: WebClient | None = None,
) -> SlackRunReport:
    """Post every task not yet in Slack (oldest due first, ``bot.post_batch`` a run)."""
    client = client or slack_client(settings)
    report = SlackRunReport()
    t = Task.__table__
    lease_start = now - timedelta(minutes=config.bot.post_lease_minutes)
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                select(t.c.id)
                .where(t.c.status != "done", _pending(t, lease_start))
                .order_by(t.c.due_at.is_(None), t.c.due_at, t.c.id)
                .limit(config.bot.post_batch)
            ).scalars()
        )
    owners = _Owners(client)
    for task_id in ids:
        with engine.begin() as conn:
            mine = conn.execute(
                update(t)
                .where(t.c.id == task_id, t.c.status != "done", _pending(t, lease_start))
                .values(posted_at=now)
            ).rowcount
        if mine != 1:
            continue  # another process has it
        view = task_view(engine, task_id)
        assert view is not None
        owner_id = owners.slack_id(view.get("owner"))
        channel = _destination(client, config, settings, owner_id)
        if not channel:
            _release_post(engine, task_id)
            report.skipped += 1
            report.errors.append(
                f"task {task_id}: nowhere to post; set SLACK_TASKS_CHANNEL or bot.tasks_to"
            )
            continue
        view["owner_slack"] = owner_id
        try:
            sent = client.chat_postMessage(channel=channel, **blocks.task_message(view, now=now))
        except SlackApiError as exc:
            _release_post(engine, task_id)
            report.failed += 1
            report.errors.append(f"task {task_id}: chat.postMessage failed: {_slack_error(exc)}")
            continue
        with engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.id == task_id)
                .values(slack_channel=sent["channel"], slack_ts=sent["ts"])
            )
            conn.execute(
                TaskEvent.__table__.insert().values(
                    task_id=task_id, at=now, actor=BOT_ACTOR, action="posted", note=owner_id
                )
            )
        report.sent += 1
    return report


def _release_post(engine: Engine, task_id: int) -> None:
    t = Task.__table__
    with engine.begin() as conn:
        conn.execute(
            update(t).where(t.c.id == task_id, t.c.slack_ts.is_(None)).values(posted_at=None)
        )


# ---------------------------------------------------------------- reminders


def send_reminders(
    engine: Engine,
    config: Config,
    settings: Settings,
    *,
    now: datetime,
    client: WebClient | None = None,
) -> SlackRunReport:
    """Remind each overdue posted task once, in its message's thread."""
    client = client or slack_client(settings)
    report = SlackRunReport()
    t = Task.__table__
    overdue = and_(
        t.c.reminded_at.is_(None),
        t.c.slack_ts.is_not(None),
        or_(
            and_(t.c.status.in_(("open", "claimed")), t.c.due_at < now),
            and_(t.c.status == "snoozed", t.c.snoozed_until < now),
            and_(t.c.status != "done", t.c.overdue_at.is_not(None)),
        ),
    )
    with engine.connect() as conn:
        ids = list(
            conn.execute(select(t.c.id).where(overdue).order_by(t.c.due_at, t.c.id)).scalars()
        )
    for task_id in ids:
        with engine.begin() as conn:
            mine = conn.execute(
                update(t).where(t.c.id == task_id, overdue).values(reminded_at=now)
            ).rowcount
        if mine != 1:
            continue
        view = task_view(engine, task_id)
        assert view is not None
        try:
            client.chat_postMessage(
                channel=view["slack_channel"],
                thread_ts=view["slack_ts"],
                **blocks.reminder_message(view, now=now),
            )
        except SlackApiError as exc:
            with engine.begin() as conn:
                conn.execute(update(t).where(t.c.id == task_id).values(reminded_at=None))
            report.failed += 1
            report.errors.append(f"task {task_id}: reminder failed: {_slack_error(exc)}")
            continue
        with engine.begin() as conn:
            conn.execute(
                TaskEvent.__table__.insert().values(
                    task_id=task_id, at=now, actor=BOT_ACTOR, action="reminded"
                )
            )
        report.sent += 1
    return report


# ---------------------------------------------------------------- digest

_DIGEST_LAST = "bot.digest.last"


def _digest_items(
    engine: Engine, kinds: tuple[str, ...], since: datetime, now: datetime, allowed: set[str] | None
) -> list[dict[str, Any]]:
    s, a, sc = Signal.__table__, Account.__table__, AccountScore.__table__
    stmt = (
        select(s.c.account_id, s.c.kind, a.c.name, sc.c.score, a.c.mrr)
        .select_from(
            s.outerjoin(a, a.c.account_id == s.c.account_id).outerjoin(
                sc, sc.c.account_id == s.c.account_id
            )
        )
        .where(
            s.c.kind.in_(kinds),
            s.c.fired_at > since,
            s.c.fired_at <= now,
            s.c.account_id != "*",
        )
    )
    if allowed is not None:
        stmt = stmt.where(s.c.account_id.in_(allowed))
    items: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(stmt):
            item = items.setdefault(
                row.account_id,
                {
                    "account_id": row.account_id,
                    "name": row.name,
                    "score": row.score,
                    "mrr": row.mrr or 0,
                    "kinds": set(),
                },
            )
            item["kinds"].add(row.kind)
    out = sorted(items.values(), key=lambda i: (-i["mrr"], i["account_id"]))
    for item in out:
        item["kinds"] = sorted(item["kinds"])
    return out


def send_digest(
    engine: Engine,
    config: Config,
    settings: Settings,
    *,
    now: datetime,
    client: WebClient | None = None,
) -> SlackRunReport:
    """Once per UTC day: the accounts with new risk signals and the newly
    expansion-ready ones since the previous digest (or the last 24 hours)."""
    report = SlackRunReport()
    channel = config.bot.digest_channel or settings.slack_tasks_channel
    if not channel:
        report.skipped = 1
        report.errors.append(
            "digest: nowhere to post; set SLACK_TASKS_CHANNEL or bot.digest_channel"
        )
        return report
    client = client or slack_client(settings)
    day = now.date().isoformat()
    key = f"bot.digest.{day}"
    kv = KeyValue.__table__
    with engine.begin() as conn:
        mine = conn.execute(
            insert_for(conn, kv)
            .values(key=key, value={"state": "sending"}, updated_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(kv.c.key)
        ).first()
        last = conn.execute(select(kv.c.value).where(kv.c.key == _DIGEST_LAST)).scalar()
    if mine is None:
        report.skipped = 1
        return report  # today's digest is out (or going out from another process)
    since = now - timedelta(hours=24)
    if last and last.get("until"):
        since = max(datetime.fromisoformat(last["until"]), now - timedelta(days=7))
    allowed = allowed_accounts(engine, config, channel)
    risks = _digest_items(engine, RISK_KINDS, since, now, allowed)
    expansions = _digest_items(engine, EXPANSION_KINDS, since, now, allowed)
    try:
        client.chat_postMessage(channel=channel, **blocks.digest_message(day, risks, expansions))
    except SlackApiError as exc:
        with engine.begin() as conn:
            conn.execute(delete(kv).where(kv.c.key == key))
        report.failed = 1
        report.errors.append(f"digest: chat.postMessage failed: {_slack_error(exc)}")
        return report
    with engine.begin() as conn:
        conn.execute(
            update(kv).where(kv.c.key == key).values(value={"state": "sent"}, updated_at=now)
        )
        value = {"until": now.isoformat(), "risks": len(risks), "expansions": len(expansions)}
        updated = conn.execute(
            update(kv).where(kv.c.key == _DIGEST_LAST).values(value=value, updated_at=now)
        ).rowcount
        if not updated:
            conn.execute(kv.insert().values(key=_DIGEST_LAST, value=value, updated_at=now))
    report.sent = 1
    return report
