"""`GET /api/live?since=CURSOR&accounts=ID,ID`: the accounts rescored since the cursor,
for `/static/app.js` to patch the cells marked ``data-live-*`` on an open page."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response

from integration_signals.scoring.live import score_changes
from integration_signals.web.site import BadRequest, Site

MAX_ACCOUNTS = 500


def register(router: APIRouter, site: Site) -> None:
    @router.get("/api/live", include_in_schema=False)
    def live(request: Request, since: str = "", accounts: str = "") -> Response:
        site.signed_in(request)
        now = site.clock()
        cursor = _parse_cursor(since, now)
        ids = [a for a in accounts.split(",") if a][:MAX_ACCOUNTS] if accounts else None
        return site.json(score_changes(site.engine, since=cursor, now=now, account_ids=ids))


def _parse_cursor(text: str, now: datetime) -> datetime:
    """An ISO timestamp; missing means now. Never more than a day back (a page left
    open overnight reloads instead of replaying everything)."""
    if not text:
        return now
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadRequest(f"since={text[:40]!r} is not a timestamp") from None
    if parsed.tzinfo is None:
        raise BadRequest("since needs a time zone (…Z)")
    return max(parsed, now - timedelta(days=1))
