"""What the bot answers: reads the store and scoring's view model, returns messages.

The listeners in `bot.app` only acknowledge and call these. Channel access rules
are applied here, so an account outside a channel's scope is "not found" everywhere:
the dashboard, the pick-list, the nearest names and the segment lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, String, cast, func, select

from integration_signals.bot import blocks
from integration_signals.config import Config, Settings
from integration_signals.store.accounts import resolve_account
from integration_signals.store.models import Account, AccountScore

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
HELP_WORDS = {"", "help", "-h", "--help", "?", "usage"}
AT_RISK_WORDS = {"at-risk", "at_risk", "atrisk", "risk", "risks"}
EXPANSION_WORDS = {"expansion", "expansion-ready", "expansion_ready", "expand", "upsell"}


@dataclass(frozen=True)
class Command:
    """What the text after the slash command asks for."""

    kind: str  # help | at_risk | expansion | account
    text: str = ""


def parse_command(text: str | None) -> Command:
    """Control characters are dropped (PostgreSQL refuses NUL in text) and runs of
    whitespace become one space; the rest is data, matched only as bound parameters."""
    cleaned = " ".join(_CONTROL.sub("", text or "").split())
    word = cleaned.lower()
    if word in HELP_WORDS:
        return Command("help")
    if word in AT_RISK_WORDS:
        return Command("at_risk")
    if word in EXPANSION_WORDS:
        return Command("expansion")
    return Command("account", cleaned)


def allowed_accounts(engine: Engine, config: Config, channel_id: str | None) -> set[str] | None:
    """The account ids a channel may see; None means every account."""
    rules = config.bot.access
    scope = rules.get(channel_id or "")
    if scope is None:
        return None if config.bot.access_default == "all" else set()
    allowed = set(scope.accounts)
    if scope.segments:
        with engine.connect() as conn:
            allowed.update(
                conn.execute(
                    select(Account.account_id).where(Account.segment.in_(scope.segments))
                ).scalars()
            )
    return allowed


@dataclass(frozen=True)
class CrmLinks:
    """Where an account's CRM records open, per destination name: its label and its
    link template (``{id}`` marks the record id). The bot does not know the
    destinations; the composing layer hands these in (``schedules.compose``)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    urls: Mapping[str, str] = field(default_factory=dict)


NO_LINKS = CrmLinks()


def dashboard_for(
    engine: Engine,
    config: Config,
    settings: Settings,
    account_id: str,
    *,
    now: datetime,
    crm_links: CrmLinks = NO_LINKS,
) -> dict[str, Any]:
    from integration_signals.scoring.health import account_health

    view = account_health(engine, config, account_id, as_of=now)
    return blocks.dashboard(
        view,
        now=now,
        max_integrations=config.bot.max_integrations,
        crm_urls=crm_links.urls,
        crm_labels=crm_links.labels,
    )


def _account_summary(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.account_id,
        "name": account.name,
        "domain": account.domain,
        "segment": account.segment,
        "plan": account.plan,
    }


def answer_account(
    engine: Engine,
    config: Config,
    settings: Settings,
    text: str,
    *,
    channel_id: str | None,
    now: datetime,
    crm_links: CrmLinks = NO_LINKS,
) -> dict[str, Any]:
    """Resolve what was typed (id, exact name, domain, fuzzy) within the channel's scope."""
    allowed = allowed_accounts(engine, config, channel_id)
    if allowed is not None and not allowed:
        return blocks.no_match(text, [])
    found = resolve_account(engine, text, allowed=allowed)
    if found.account is not None:
        return dashboard_for(
            engine, config, settings, found.account.account_id, now=now, crm_links=crm_links
        )
    if found.accounts:
        ordered = sorted(found.accounts, key=lambda a: ((a.name or "").lower(), a.account_id))
        return blocks.pick_list(text, [_account_summary(a) for a in ordered])
    return blocks.no_match(text, found.suggestions)


def answer_pick(
    engine: Engine,
    config: Config,
    settings: Settings,
    value: str,
    *,
    channel_id: str | None,
    now: datetime,
    crm_links: CrmLinks = NO_LINKS,
) -> dict[str, Any]:
    """A pick-list or suggestion button: ``id:ACCOUNT`` or ``name:NAME``."""
    kind, _, rest = _CONTROL.sub("", value).partition(":")
    if kind == "id":
        allowed = allowed_accounts(engine, config, channel_id)
        with engine.connect() as conn:
            exists = conn.execute(
                select(Account.account_id).where(Account.account_id == rest)
            ).first()
        if exists is None or (allowed is not None and rest not in allowed):
            return blocks.no_match(rest, [])
        return dashboard_for(engine, config, settings, rest, now=now, crm_links=crm_links)
    return answer_account(
        engine, config, settings, rest, channel_id=channel_id, now=now, crm_links=crm_links
    )


SEGMENT_OF = {"at_risk": "at-risk", "expansion": "expansion-ready"}


def segment_rows(
    engine: Engine, segment: str, *, allowed: set[str] | None, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Accounts whose current score carries ``segment``: most urgent first (lowest
    score for at-risk, highest MRR for expansion). Returns (top rows, total)."""
    s, a = AccountScore.__table__, Account.__table__
    # segments is a JSON list; its text holds the name in quotes exactly once.
    where = [cast(s.c.segments, String).like(f'%"{segment}"%')]
    if allowed is not None:
        where.append(s.c.account_id.in_(allowed))
    if segment == "at-risk":
        order = [s.c.score.asc(), a.c.mrr.desc().nulls_last(), s.c.account_id]
    else:
        order = [a.c.mrr.desc().nulls_last(), s.c.score.desc(), s.c.account_id]
    joined = s.join(a, a.c.account_id == s.c.account_id)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(joined).where(*where)).scalar_one()
        rows = conn.execute(
            select(s.c.account_id, s.c.score, s.c.band, s.c.reason, a.c.name, a.c.mrr)
            .select_from(joined)
            .where(*where)
            .order_by(*order)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows], total


def answer_segment(
    engine: Engine, config: Config, kind: str, *, channel_id: str | None
) -> dict[str, Any]:
    allowed = allowed_accounts(engine, config, channel_id)
    segment = SEGMENT_OF[kind]
    rows, total = segment_rows(engine, segment, allowed=allowed, limit=config.bot.list_size)
    title = "At-risk accounts" if kind == "at_risk" else "Expansion-ready accounts"
    empty = (
        "No account is at risk right now."
        if kind == "at_risk"
        else "No account is expansion-ready right now."
    )
    return blocks.account_list(title, rows, total=total, empty=empty)


def answer(
    engine: Engine,
    config: Config,
    settings: Settings,
    command: Command,
    *,
    channel_id: str | None,
    now: datetime,
    crm_links: CrmLinks = NO_LINKS,
) -> dict[str, Any]:
    """The whole answer to `/integration-health TEXT`."""
    if command.kind == "help":
        return blocks.help_message(config.bot.command)
    if command.kind in SEGMENT_OF:
        return answer_segment(engine, config, command.kind, channel_id=channel_id)
    return answer_account(
        engine,
        config,
        settings,
        command.text,
        channel_id=channel_id,
        now=now,
        crm_links=crm_links,
    )
