"""The one place that reads Salesforce's answers to writes. API-NOTES A1/A2 document a
SaveResult / UpsertResult array in request order, each ``{"success", "errors": [...]}``;
an answer of another shape (not a list, the wrong length, an item that is not an
object, ``errors`` that are not objects) fails the records it belongs to, with a reason,
and never raises: the other batches and records go on."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from integration_signals.syncs.contract import RecordChange, RecordResult

MESSAGE_MAX = 500


def record_error(errors: Any) -> str:
    """A failed record's ``errors[]`` as one line: ``CODE: message (fields)``; per-record
    errors spell the code ``statusCode``, top-level ones ``errorCode`` (A5)."""
    parts = []
    for e in errors if isinstance(errors, list) else []:
        if not isinstance(e, dict):
            parts.append(f"ERROR: {str(e)[:200]}")
            continue
        code = e.get("statusCode") or e.get("errorCode") or "ERROR"
        fields = e.get("fields")
        named = [str(f) for f in fields] if isinstance(fields, list) else []
        suffix = f" ({', '.join(named)})" if named else ""
        parts.append(f"{code}: {e.get('message', '')}{suffix}")
    return "; ".join(parts)[:MESSAGE_MAX] or "Salesforce refused the record without a message"


def save_results(answer: Any, batch: Sequence[RecordChange], *, what: str) -> list[RecordResult]:
    """A result for every record of ``batch`` from a Collections answer (``what``: the
    call, for the reason of an odd answer)."""
    if not isinstance(answer, list) or len(answer) != len(batch):
        got = f"{len(answer)} results" if isinstance(answer, list) else type(answer).__name__
        reason = (
            f"Salesforce answered {what} with an unexpected body ({got} for"
            f" {len(batch)} records); retried next run"
        )
        return [RecordResult(c.record_id, False, reason) for c in batch]
    results = []
    for change, item in zip(batch, answer, strict=True):
        if not isinstance(item, dict):
            results.append(
                RecordResult(
                    change.record_id,
                    False,
                    f"Salesforce answered {what} with an unexpected result"
                    f" ({type(item).__name__}) for this record",
                )
            )
        elif item.get("success") is True:
            results.append(RecordResult(change.record_id, True))
        else:
            results.append(RecordResult(change.record_id, False, record_error(item.get("errors"))))
    return results


# ---------------------------------------------------------------- lookups and Bulk results
# A4: a query answers ``{"totalSize", "done", "records": [{"Id", ...}]}``; A8: Bulk 2.0
# results are CSV with ``sf__Id`` (and ``sf__Error`` for failed rows). An answer of
# another shape makes the lookup find nothing (its accounts stay unmatched, with the
# reason) or fails only the records it cannot confirm; nothing here raises.


def query_hits(
    answer: Any, *, read: str = "Website"
) -> tuple[list[tuple[str, Any]], list[Any], str | None]:
    """(id, ``read`` field) of every readable record of a query answer; the ``read``
    values of records without a usable Id; and a problem when the answer as a whole,
    or a record whose fields cannot be read, was odd (None when all was readable)."""
    records = answer.get("records") if isinstance(answer, dict) else None
    if not isinstance(records, list):
        got = type(records if isinstance(answer, dict) else answer).__name__
        return [], [], f"Salesforce answered the query with an unexpected body ({got})"
    hits: list[tuple[str, Any]] = []
    no_id: list[Any] = []
    problem = None
    for rec in records:
        if not isinstance(rec, dict):
            problem = f"Salesforce answered the query with a record that is not an object ({type(rec).__name__})"
            continue
        record_id = rec.get("Id")
        if isinstance(record_id, str) and record_id.strip():
            hits.append((record_id.strip(), rec.get(read)))
        else:
            no_id.append(rec.get(read))
    return hits, no_id, problem


def bulk_rows(text: Any) -> tuple[list[dict[str, str]], str | None]:
    """The rows of a Bulk 2.0 results CSV as dicts of strings, and a problem when the
    answer was not CSV text."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text is None:
        return [], None
    if not isinstance(text, str):
        return [], f"Salesforce answered the Bulk results with {type(text).__name__}, not CSV"
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        return [], f"Salesforce answered the Bulk results with unreadable CSV ({exc})"
    out = []
    for row in rows:
        out.append({str(k): v for k, v in row.items() if isinstance(k, str) and isinstance(v, str)})
    return out, None


def bulk_id(row: dict[str, str]) -> str:
    return (row.get("Id") or row.get("sf__Id") or "").strip()


def bulk_results(
    ok_text: Any, failed_text: Any, changes: Sequence[RecordChange]
) -> list[RecordResult]:
    """A result for every record of a Bulk job from its successful and failed results
    (row order is not guaranteed, A8). A record neither answer confirms is failed with
    the reason, and retried next run."""
    ok_rows, ok_problem = bulk_rows(ok_text)
    failed_rows, failed_problem = bulk_rows(failed_text)
    ok = {bulk_id(r) for r in ok_rows} - {""}
    failed = {bulk_id(r): r.get("sf__Error") or "" for r in failed_rows if bulk_id(r)}
    unconfirmed = "; ".join(p for p in (ok_problem, failed_problem) if p)
    results = []
    for c in changes:
        if c.record_id in failed:
            error = failed[c.record_id].removesuffix(":--") or "refused by Bulk API"
            results.append(RecordResult(c.record_id, False, error[:MESSAGE_MAX]))
        elif c.record_id in ok:
            results.append(RecordResult(c.record_id, True))
        else:
            reason = "not processed by the Bulk job; retried next run"
            if unconfirmed:
                reason = f"{unconfirmed}; retried next run"[:MESSAGE_MAX]
            results.append(RecordResult(c.record_id, False, reason))
    return results


def query_next(answer: Any) -> tuple[str | None, str | None]:
    """The ``nextRecordsUrl`` of a query page (None when ``done``), and a problem when a
    page says it is not done without saying where the rest is."""
    if not isinstance(answer, dict) or answer.get("done") is not False:
        return None, None
    url = answer.get("nextRecordsUrl")
    if isinstance(url, str) and url.startswith("/"):
        return url, None
    return None, "Salesforce answered the query with more pages but no nextRecordsUrl"
