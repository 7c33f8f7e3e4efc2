"""The account page (`/accounts/{id}`, twin `/api/accounts/{id}`): the seeds' dashboard
card, rendered from `scoring.health.account_health` — the same document `signals health
--json` prints and the Slack bot renders."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from integration_signals.scoring.health import UnknownAccount, account_health
from integration_signals.store.accounts import resolve_account
from integration_signals.store.models import Account
from integration_signals.web import auth
from integration_signals.web.charts import history_chart
from integration_signals.web.site import NotFound, Site


def register(router: APIRouter, site: Site) -> None:
    @router.get("/accounts/{account_id:path}", include_in_schema=False)
    @router.get("/api/accounts/{account_id:path}", include_in_schema=False)
    def account_page(request: Request, account_id: str) -> Response:
        actor = site.signed_in(request)
        try:
            view = account_health(
                site.engine,
                site.config,
                account_id,
                as_of=site.as_of(request),
                record_urls=site.record_urls,
            )
        except UnknownAccount:
            raise NotFound(
                f"no account has id {account_id!r}",
                nearest=nearest_accounts(site, account_id),
            ) from None
        return site.page(
            request,
            view,
            "account.html",
            title=view["name"] or view["account_id"],
            nav="portfolio",
            can_act=auth.can(actor, "act_on_tasks"),
            record_labels=site.record_labels,
            history_svg=history_chart(
                view["history"], bands=site.config.scoring.bands.model_dump()
            ),
        )


def nearest_accounts(site: Site, text: str) -> list[dict[str, Any]]:
    """The accounts a mistyped id most likely meant (ids, names, domains, then fuzzy
    names — the bot's resolution), each with its id and name."""
    found = resolve_account(site.engine, text, limit=5)
    if found.accounts:
        return [{"account_id": a.account_id, "name": a.name} for a in found.accounts[:5]]
    if not found.suggestions:
        return []
    a = Account.__table__
    with site.engine.connect() as conn:
        rows = conn.execute(
            select(a.c.account_id, a.c.name).where(a.c.name.in_(found.suggestions))
        ).all()
    order = {name: i for i, name in enumerate(found.suggestions)}
    rows = sorted(rows, key=lambda r: (order.get(r.name, 99), r.account_id))
    return [{"account_id": r.account_id, "name": r.name} for r in rows[:5]]
