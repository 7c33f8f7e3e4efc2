"""The one place that reads HubSpot's answers to batch writes. API-NOTES B: a batch
envelope ``{"status", "results": [{"id", ...}], "errors": [{"category", "message",
"context": {"ids": [...]}}]}`` (``errors`` on a 207). An answer of another shape fails
the records it cannot confirm, with a reason, and never raises."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from integration_signals.syncs.contract import RecordChange, RecordResult

MESSAGE_MAX = 500
NO_RESULT = "HubSpot returned no result for it"


def _ids_of(error: dict[str, Any]) -> list[str]:
    context = error.get("context")
    if not isinstance(context, dict):
        return []
    ids = context.get("ids") or context.get("id") or []
    return [str(i) for i in (ids if isinstance(ids, list) else [ids])]


def batch_results(answer: Any, batch: Sequence[RecordChange]) -> list[RecordResult]:
    """A result for every record of ``batch``: landed when the envelope lists it among
    ``results`` and no error names it; refused with the error's message otherwise."""
    if not isinstance(answer, dict):
        reason = f"HubSpot answered the batch with an unexpected body ({type(answer).__name__})"
        return [RecordResult(c.record_id, False, reason) for c in batch]
    results = answer.get("results")
    errors = answer.get("errors")
    landed = {
        str(r["id"])
        for r in (results if isinstance(results, list) else [])
        if isinstance(r, dict) and r.get("id") is not None
    }
    refused: dict[str, str] = {}
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        message = f"{error.get('category')}: {error.get('message')}"[:MESSAGE_MAX]
        for record_id in _ids_of(error):
            refused[record_id] = message
    out = []
    for change in batch:
        if change.record_id in landed and change.record_id not in refused:
            out.append(RecordResult(change.record_id, True))
        else:
            out.append(
                RecordResult(change.record_id, False, refused.get(change.record_id, NO_RESULT))
            )
    return out


def search_page(page: Any) -> tuple[list[tuple[str, Any]], list[Any], str | None, str | None]:
    """A CRM search answer (API-NOTES B: ``{"total", "results": [{"id", "properties"}],
    "paging": {"next": {"after"}}}``): (id, domain) of every readable company; the
    domains of results without a usable id; the cursor of the next page; and a problem
    when the page as a whole, or a result, was odd. Never raises."""
    results = page.get("results") if isinstance(page, dict) else None
    if not isinstance(results, list):
        got = type(results if isinstance(page, dict) else page).__name__
        return [], [], None, f"HubSpot answered the search with an unexpected body ({got})"
    found: list[tuple[str, Any]] = []
    no_id: list[Any] = []
    problem = None
    for item in results:
        if not isinstance(item, dict):
            problem = f"HubSpot answered the search with a result that is not an object ({type(item).__name__})"
            continue
        props = item.get("properties")
        domain = props.get("domain") if isinstance(props, dict) else None
        record_id = item.get("id")
        if (
            isinstance(record_id, str | int)
            and not isinstance(record_id, bool)
            and str(record_id).strip()
        ):
            found.append((str(record_id).strip(), domain))
        else:
            no_id.append(domain)
    paging = page.get("paging")
    after = None
    if isinstance(paging, dict) and isinstance(paging.get("next"), dict):
        cursor = paging["next"].get("after")
        after = str(cursor) if isinstance(cursor, str | int) and str(cursor) else None
    return found, no_id, after, problem
