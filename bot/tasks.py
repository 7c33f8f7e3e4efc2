"""Playbook tasks in Slack: posting each task once, reminding overdue ones once, the
daily digest, and re-rendering a task's message after a click.

"Once" holds across processes: each run first claims its row with one conditional
UPDATE (posted_at / reminded_at) or a key insert (the digest), and only the process
whose statement changed the row talks to Slack. A failed call releases the claim so
the next run retries; a crash between claiming and posting is retried once the
lease (``bot.post_lease_minutes``) has passed.

One bad item never stops a run: any exception while posting a task, a reminder or the
digest (a Slack error, a timeout, an answer of an unexpected shape, a bug) is recorded
on that item with its reason (``store.failures``: jobs ``tasks.post``, ``tasks.remind``,
``tasks.digest``), counted in the run's report, and the item is held back with a growing
backoff while the others go on. At its Nth failure in a row (``[schedules]
item_alert_after``) one alert goes out through ``alert`` (the scheduler's alert path).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine, and_, delete, or_, select, update

from integration_signals.bot import blocks
from integration_signals.bot.client import slack_client
from integration_signals.bot.shapes import (
    UnexpectedAnswer,
    channel_id_of,
    failure_reason,
    is_not_found,
    posted_message_of,
    slack_error,
    user_id_of,
)
from integration_signals.bot.views import allowed_accounts
from integration_signals.config import Config, Settings
from integration_signals.store import failures
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
JOB_POST, JOB_REMIND, JOB_DIGEST = "tasks.post", "tasks.remind", "tasks.digest"
Alert = Callable[[str], None]


@dataclass
class SlackRunReport:
    """What one run did: how many messages went out, failed or had nowhere to go, how
    many failed items still wait out their backoff, and how many alerts went out."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    held_back: int = 0
    alerted: int = 0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "held_back": self.held_back,
            "alerted": self.alerted,
            "errors": self.errors[:50],
        }

    def item_failed(
        self,
        engine: Engine,
        job: str,
        item: str,
        what: str,
        reason: str,
        *,
        now: datetime,
        policy: failures.RetryPolicy,
        alert: Alert | None,
    ) -> None:
        """Record one item's failure, count it, and send its one alert when due."""
        failed = failures.record_failure(engine, job, item, reason, now=now, policy=policy)
        self.failed += 1
        self.errors.append(f"{what}: {reason} (failure {failed.failures}, retried later)")
        log.warning("%s: %s (failure %d in a row)", what, reason, failed.failures)
        if failed.alert:
            self.alerted += 1
            _send_alert(alert, failed.alert_text(what))


def _send_alert(alert: Alert | None, text: str) -> None:
    if alert is None:
        log.error("alert: %s", text)
        return
    try:
        alert(text)
    except Exception as exc:  # an alert that cannot go out must not stop the run
        log.error("could not send the alert (%s): %s", failure_reason("alert", exc), text)


def _slack_error(exc: SlackApiError) -> str:
    return slack_error(exc)


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
    """Owner (Slack id or e-mail) -> Slack user id, looked up once per run.

    ``users_not_found`` is an answer (the owner is not in Slack: the task goes out
    without a mention). Anything else — an error, a timeout, ``ok`` without a user —
    raises, so the task fails alone and is posted with its owner on a later run; the
    failure is remembered for the run, so other tasks of that owner do not wait again."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self.cache: dict[str, str | None | Exception] = {}

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
                self.cache[owner] = user_id_of(self.client.users_lookupByEmail(email=owner))
            except Exception as exc:
                if is_not_found(exc):
                    log.info("owner at %s is not in Slack", owner.split("@")[-1])
                    self.cache[owner] = None
                else:
                    self.cache[owner] = exc
        found = self.cache[owner]
        if isinstance(found, Exception):
            raise found
        return found


def _destination(
    client: WebClient, config: Config, settings: Settings, owner_id: str | None
) -> str | None:
    if config.bot.tasks_to == "owner" and owner_id:
        try:
            return channel_id_of(client.conversations_open(users=owner_id))
        except (SlackApiError, UnexpectedAnswer) as exc:
            log.warning(
                "cannot open a DM with %s (%s); using the channel",
                owner_id,
                failure_reason("conversations.open", exc),
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
    alert: Alert | None = None,
) -> SlackRunReport:
    """Post every task not yet in Slack (oldest due first, ``bot.post_batch`` a run).
    A task that fails is recorded and held back; the others are posted."""
    client = client or slack_client(settings)
    report = SlackRunReport()
    policy = failures.RetryPolicy.from_config(config)
    t = Task.__table__
    lease_start = now - timedelta(minutes=config.bot.post_lease_minutes)
    pending = and_(t.c.status != "done", _pending(t, lease_start))
    with engine.connect() as conn:
        waiting = [int(i) for i in failures.held_back(conn, JOB_POST, now=now) if i.isdigit()]
        ids = list(
            conn.execute(
                select(t.c.id)
                .where(pending, t.c.id.not_in(waiting))
                .order_by(t.c.due_at.is_(None), t.c.due_at, t.c.id)
                .limit(config.bot.post_batch)
            ).scalars()
        )
        if waiting:
            report.held_back = len(
                conn.execute(select(t.c.id).where(pending, t.c.id.in_(waiting))).all()
            )
        retried = set(_failing_items(conn, JOB_POST))
    owners = _Owners(client)
    for task_id in ids:
        with engine.begin() as conn:
            mine = conn.execute(
                update(t).where(t.c.id == task_id, pending).values(posted_at=now)
            ).rowcount
        if mine != 1:
            continue  # another process has it
        try:
            outcome = _post_task(engine, client, config, settings, task_id, owners, now=now)
        except Exception as exc:  # this task fails alone; the others go on
            _release_post(engine, task_id)
            report.item_failed(
                engine,
                JOB_POST,
                str(task_id),
                f"task {task_id}",
                _reason("chat.postMessage", exc),
                now=now,
                policy=policy,
                alert=alert,
            )
            continue
        if outcome is None:
            _release_post(engine, task_id)
            report.skipped += 1
            report.errors.append(
                f"task {task_id}: nowhere to post; set SLACK_TASKS_CHANNEL or bot.tasks_to"
            )
            continue
        if str(task_id) in retried:
            failures.record_success(engine, JOB_POST, str(task_id))
        report.sent += 1
    return report


def _failing_items(conn: Any, job: str) -> list[str]:
    return [str(row["item"]) for row in failures.failing(conn, job)]


def _reason(method: str, exc: BaseException) -> str:
    """One line for a failed item; a lookup's own error names its method."""
    if isinstance(exc, UnexpectedAnswer):
        return str(exc)
    if isinstance(exc, _LookupFailed):
        return exc.reason
    return failure_reason(method, exc)


class _LookupFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _post_task(
    engine: Engine,
    client: WebClient,
    config: Config,
    settings: Settings,
    task_id: int,
    owners: _Owners,
    *,
    now: datetime,
) -> str | None:
    """Post one claimed task; None when there is nowhere to post it. Raises on any
    failure (the caller records it on the task)."""
    view = task_view(engine, task_id)
    if view is None:
        raise LookupError(f"task {task_id} disappeared while being posted")
    try:
        owner_id = owners.slack_id(view.get("owner"))
    except Exception as exc:
        raise _LookupFailed(_reason("users.lookupByEmail", exc)) from exc
    channel = _destination(client, config, settings, owner_id)
    if not channel:
        return None
    view["owner_slack"] = owner_id
    sent = client.chat_postMessage(channel=channel, **blocks.task_message(view, now=now))
    posted_channel, ts = posted_message_of(sent)
    t = Task.__table__
    with engine.begin() as conn:
        conn.execute(
            update(t).where(t.c.id == task_id).values(slack_channel=posted_channel, slack_ts=ts)
        )
        conn.execute(
            TaskEvent.__table__.insert().values(
                task_id=task_id, at=now, actor=BOT_ACTOR, action="posted", note=owner_id
            )
        )
    return ts


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
    alert: Alert | None = None,
) -> SlackRunReport:
    """Remind each overdue posted task once, in its message's thread. A reminder that
    fails is recorded on its task and held back; the others go out."""
    client = client or slack_client(settings)
    report = SlackRunReport()
    policy = failures.RetryPolicy.from_config(config)
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
        waiting = [int(i) for i in failures.held_back(conn, JOB_REMIND, now=now) if i.isdigit()]
        ids = list(
            conn.execute(
                select(t.c.id).where(overdue, t.c.id.not_in(waiting)).order_by(t.c.due_at, t.c.id)
            ).scalars()
        )
        if waiting:
            report.held_back = len(
                conn.execute(select(t.c.id).where(overdue, t.c.id.in_(waiting))).all()
            )
        retried = set(_failing_items(conn, JOB_REMIND))
    for task_id in ids:
        with engine.begin() as conn:
            mine = conn.execute(
                update(t).where(t.c.id == task_id, overdue).values(reminded_at=now)
            ).rowcount
        if mine != 1:
            continue
        try:
            view = task_view(engine, task_id)
            if view is None:
                raise LookupError(f"task {task_id} disappeared while being reminded")
            client.chat_postMessage(
                channel=view["slack_channel"],
                thread_ts=view["slack_ts"],
                **blocks.reminder_message(view, now=now),
            )
        except Exception as exc:  # this reminder fails alone; the others go out
            with engine.begin() as conn:
                conn.execute(update(t).where(t.c.id == task_id).values(reminded_at=None))
            report.item_failed(
                engine,
                JOB_REMIND,
                str(task_id),
                f"reminder of task {task_id}",
                _reason("chat.postMessage", exc),
                now=now,
                policy=policy,
                alert=alert,
            )
            continue
        with engine.begin() as conn:
            conn.execute(
                TaskEvent.__table__.insert().values(
                    task_id=task_id, at=now, actor=BOT_ACTOR, action="reminded"
                )
            )
        if str(task_id) in retried:
            failures.record_success(engine, JOB_REMIND, str(task_id))
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
    alert: Alert | None = None,
) -> SlackRunReport:
    """Once per UTC day: the accounts with new risk signals and the newly
    expansion-ready ones since the previous digest (or the last 24 hours). A day's
    digest that fails is recorded (item: the day) and tried again after its backoff."""
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
    with engine.connect() as conn:
        if day in failures.held_back(conn, JOB_DIGEST, now=now):
            report.held_back = 1
            return report
        retried = day in _failing_items(conn, JOB_DIGEST)
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
    try:
        risks, expansions = _post_digest(engine, config, client, channel, day, last, now=now)
    except Exception as exc:  # today's digest fails alone and is tried again later
        with engine.begin() as conn:
            conn.execute(delete(kv).where(kv.c.key == key))
        report.item_failed(
            engine,
            JOB_DIGEST,
            day,
            f"digest of {day}",
            _reason("chat.postMessage", exc),
            now=now,
            policy=failures.RetryPolicy.from_config(config),
            alert=alert,
        )
        return report
    if retried:
        failures.record_success(engine, JOB_DIGEST, day)
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


def _post_digest(
    engine: Engine,
    config: Config,
    client: WebClient,
    channel: str,
    day: str,
    last: Any,
    *,
    now: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    since = now - timedelta(hours=24)
    if isinstance(last, dict) and last.get("until"):
        since = max(datetime.fromisoformat(last["until"]), now - timedelta(days=7))
    allowed = allowed_accounts(engine, config, channel)
    risks = _digest_items(engine, RISK_KINDS, since, now, allowed)
    expansions = _digest_items(engine, EXPANSION_KINDS, since, now, allowed)
    sent = client.chat_postMessage(channel=channel, **blocks.digest_message(day, risks, expansions))
    posted_message_of(sent)
    return risks, expansions
