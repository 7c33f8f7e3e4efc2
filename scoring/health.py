"""The account health view model, shared by `signals health` and the Slack bot.

``account_health`` returns the exact `signals health --json` document: the account,
its score, band, 30-day trend and stage, the six components with reasons and inputs,
each integration with its state, 7-day success rate, volume per day and last good
sync, percentiles within the segment, open signals and tasks, and CRM ids — plus,
for the web dashboard's account page, each integration's last error, the recently
resolved signals, the daily score history and the CRM record links.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, select

from integration_signals.config import COMPONENTS, Config
from integration_signals.scoring.episodes import episodes_as_of
from integration_signals.scoring.facts import AccountFacts, load_facts_conn
from integration_signals.scoring.run import _percentiles, day_bounds
from integration_signals.scoring.score import score
from integration_signals.scoring.signals import segments_for
from integration_signals.scoring.tasks import tasks_as_of
from integration_signals.store.models import (
    Account,
    AccountScore,
    Connection,
    ScoreHistory,
)
from integration_signals.store.sql import as_utc

STATE_ORDER = {"active": 0, "broken": 1, "idle": 2, "installed": 3, "uninstalled": 4}
OPEN_TASK_STATUSES = ("open", "claimed", "snoozed")
HISTORY_DAYS = 180


class UnknownAccount(LookupError):
    """No account has this id."""


def account_health(
    engine: Engine,
    config: Config,
    account_id: str,
    *,
    as_of: datetime,
    record_urls: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The health document of one account as of ``as_of``'s UTC day. ``record_urls``
    (destination -> URL template with ``{id}``, from the destination registry) fills
    ``crm_links`` for the records the account is known under."""
    as_of = as_utc(as_of)  # type: ignore[assignment]
    day = as_of.date()
    a = Account.__table__
    s = AccountScore.__table__
    with engine.connect() as conn:
        account = conn.execute(select(a).where(a.c.account_id == account_id)).mappings().first()
        if account is None:
            raise UnknownAccount(f"no account has id {account_id!r}")
        facts = load_facts_conn(conn, config, as_of=day, account_ids=[account_id])[account_id]
        sc = score(facts, config.scoring)
        stored = conn.execute(select(s).where(s.c.account_id == account_id)).mappings().first()
        lo, hi = day_bounds(day)
        fresh = (
            stored is not None
            and lo <= as_utc(stored["as_of"]) < hi  # type: ignore[operator]
            and stored["config_version"] == config.version
        )
        if fresh:
            percentiles = stored["percentiles"]  # type: ignore[index]
        else:
            percentiles = _peer_percentiles(conn, config, account_id, sc)
        trend = _trend(conn, account_id, sc.score, as_of)
        episodes = episodes_as_of(
            conn,
            as_of,
            account_ids=[account_id],
            recent_days=config.signals.recently_resolved_days,
        )
        signals = [
            {k: e[k] for k in ("id", "kind", "subject", "fired_at", "details")}
            for e in episodes
            if e["status"] == "open"
        ]
        recent = sorted(
            (
                {k: e[k] for k in ("id", "kind", "subject", "fired_at", "resolved_at", "details")}
                for e in episodes
                if e["status"] == "resolved"
            ),
            key=lambda e: (e["resolved_at"], e["id"]),
            reverse=True,
        )[:20]
        tasks = _open_tasks(conn, account_id, as_of)
        errors = _connection_errors(conn, account_id)
        history = score_history(conn, account_id, since=as_of - timedelta(days=HISTORY_DAYS))
    integrations = integrations_of(facts)
    for item in integrations:
        item.update(
            errors.get(item["connection_id"], {"last_error": None, "last_failure_at": None})
        )
    crm = crm_records(account)
    return {
        "account_id": account_id,
        "name": account["name"],
        "domain": account["domain"],
        "segment": account["segment"],
        "plan": account["plan"],
        "mrr": account["mrr"],
        "csm": account["csm"],
        "owner": account["owner"],
        "renewal_date": account["renewal_date"],
        "as_of": as_of,
        "score": sc.score,
        "band": sc.band,
        "stage": sc.stage,
        "reason": sc.reason,
        "trend_30d": trend["delta"],
        "trend": trend,
        "active_integrations": sc.active_integrations,
        "components": sc.components,
        "onboarding": sc.details.get("onboarding"),
        "integrations": integrations,
        "percentiles": percentiles,
        # as of T: from the episodes open then and the score then (what the last
        # evaluation stored is the same thing when T is its moment)
        "segments": segments_for(
            SimpleNamespace(band=sc.band, stage=sc.stage, tenure_days=None),  # type: ignore[arg-type]
            [e["kind"] for e in signals],
            config.signals,
        ),
        "signals": signals,
        "tasks": tasks,
        "crm": crm,
        "crm_links": crm_links(crm, record_urls or {}),
        "recent_signals": recent,
        "history": history,
    }


def crm_links(crm: Mapping[str, Any], record_urls: Mapping[str, str]) -> dict[str, str]:
    """CRM name -> the record's URL, for each CRM the account has an id in and a URL
    template for."""
    links = {}
    for name, template in record_urls.items():
        record_id = crm.get(f"{name}_id")
        if record_id and template:
            links[name] = template.replace("{id}", str(record_id))
    return links


def score_history(conn: Any, account_id: str, *, since: datetime) -> list[dict[str, Any]]:
    """The account's score at the end of each UTC day it changed since ``since``
    (oldest first): what the account page's chart draws."""
    h = ScoreHistory.__table__
    rows = conn.execute(
        select(h.c.as_of, h.c.score, h.c.band)
        .where(h.c.account_id == account_id, h.c.as_of >= since)
        .order_by(h.c.as_of, h.c.id)
    ).all()
    by_day: dict[Any, dict[str, Any]] = {}
    for row in rows:
        at = as_utc(row.as_of)
        assert at is not None
        by_day[at.date()] = {"day": at.date(), "score": row.score, "band": row.band}
    return list(by_day.values())


def _connection_errors(conn: Any, account_id: str) -> dict[str, dict[str, Any]]:
    c = Connection.__table__
    rows = conn.execute(
        select(c.c.connection_id, c.c.last_error, c.c.last_failure_at, c.c.last_success_at).where(
            c.c.account_id == account_id
        )
    ).all()
    out = {}
    for row in rows:
        failed_last = row.last_failure_at is not None and (
            row.last_success_at is None or as_utc(row.last_failure_at) > as_utc(row.last_success_at)  # type: ignore[operator]
        )
        out[row.connection_id] = {
            # The error of the newest failure, while no success has come after it.
            "last_error": row.last_error if failed_last else None,
            "last_failure_at": row.last_failure_at,
        }
    return out


def crm_records(account: Any) -> dict[str, Any]:
    """The account's CRM record ids: its ``salesforce_id`` and ``hubspot_id`` columns,
    and any other destination's ``<name>_id`` kept in its traits."""
    records = {"salesforce_id": account["salesforce_id"], "hubspot_id": account["hubspot_id"]}
    for key, value in sorted((account["traits"] or {}).items()):
        if key.endswith("_id") and key not in records and isinstance(value, str | int):
            records[key] = value
    return records


def integrations_of(facts: AccountFacts) -> list[dict[str, Any]]:
    rows = []
    for c in sorted(facts.connections, key=lambda c: (STATE_ORDER.get(c.state, 9), c.name)):
        attempts = c.successes_7 + c.failures_7
        rows.append(
            {
                "key": c.integration.key,
                "name": c.integration.name,
                "category": c.integration.category,
                "connection_id": c.connection_id,
                "state": c.state,
                "success_rate_7d": (c.successes_7 / attempts) if attempts else None,
                "syncs_7d": attempts,
                "failures_7d": c.failures_7,
                "records_per_day": c.records_7 / 7,
                "api_calls_per_day": c.api_calls_7 / 7,
                "last_success_at": c.last_success_at,
                "installed_at": c.installed_at,
                "activated_at": c.activated_at,
            }
        )
    return rows


def _trend(conn: Any, account_id: str, current: int, as_of: datetime) -> dict[str, Any]:
    """Score now vs the newest recorded score at least 30 days older."""
    h = ScoreHistory.__table__
    _lo, hi = day_bounds((as_of - timedelta(days=30)).date())
    row = conn.execute(
        select(h.c.score, h.c.as_of)
        .where(h.c.account_id == account_id, h.c.as_of < hi)
        .order_by(h.c.as_of.desc(), h.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return {"delta": None, "previous": None, "previous_as_of": None}
    return {"delta": current - row.score, "previous": row.score, "previous_as_of": row.as_of}


def _peer_percentiles(conn: Any, config: Config, account_id: str, sc: Any) -> dict[str, Any]:
    """Percentiles against every other account's stored score. Only the component
    scores are read, extracted by the database: decoding each account's whole
    components document (reasons and inputs, ~1.6 KB) made this most of the command's
    time at 10,000 accounts."""
    s = AccountScore.__table__
    a = Account.__table__
    parts = [s.c.components[(name, "score")].as_float() for name in COMPONENTS]
    stored = {}
    for aid, segment, value, *values in conn.execute(
        select(s.c.account_id, a.c.segment, s.c.score, *parts).select_from(
            s.join(a, a.c.account_id == s.c.account_id)
        )
    ):
        if aid == account_id:
            continue
        components = {n: v for n, v in zip(COMPONENTS, values, strict=True) if v is not None}
        stored[aid] = (segment, components, None, None, value)
    return _percentiles(config, stored, {account_id: sc})[account_id]


def _open_tasks(conn: Any, account_id: str, as_of: datetime) -> list[dict[str, Any]]:
    """The account's tasks not done as of ``as_of`` (``tasks_as_of``: created by then,
    with their status as it was then)."""
    keep = (
        "id",
        "signal_kind",
        "title",
        "owner",
        "status",
        "due_at",
        "claimed_by",
        "snoozed_until",
    )
    return [
        {k: task[k] for k in keep}
        for task in tasks_as_of(
            conn, as_of=as_of, account_ids=[account_id], statuses=OPEN_TASK_STATUSES
        )
    ]
