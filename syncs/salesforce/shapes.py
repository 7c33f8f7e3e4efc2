"""The one place that reads Salesforce's answers to writes. API-NOTES A1/A2 document a
SaveResult / UpsertResult array in request order, each ``{"success", "errors": [...]}``;
an answer of another shape (not a list, the wrong length, an item that is not an
object, ``errors`` that are not objects) fails the records it belongs to, with a reason,
and never raises: the other batches and records go on."""

from __future__ import annotations

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
