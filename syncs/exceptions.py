"""How a sync failure is recovered from, in three kinds (STYLE habit 4).

- ``FatalSyncError``: the run cannot go on (bad credentials, missing fields, daily API
  limit); the message says what to do. Confirmed writes so far stay in the ledger.
- ``RetriableError``: try the same request again later (429, 5xx, timeouts);
  ``retry_after`` carries the vendor's hint in seconds when it gave one.
- ``BatchRejected``: the CRM refused a whole request because of what one of its records
  holds; the sink splits the batch so the bad record fails alone.

A record refused inside a successful call is not an exception at all: it is a
``RecordResult`` with ``ok=False`` (see ``syncs.contract``).

Every error carries keyword context (destination, record, vendor status and code) and
never a credential or a whole record.
"""

from __future__ import annotations

from typing import Any


class SyncError(Exception):
    """Base of every error raised by the syncs layer."""

    def __init__(
        self,
        message: str,
        *,
        destination: str | None = None,
        record_id: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.destination = destination
        self.record_id = record_id
        self.status = status
        self.code = code

    def context(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in {
                "destination": self.destination,
                "record_id": self.record_id,
                "status": self.status,
                "code": self.code,
            }.items()
            if v is not None
        }


class FatalSyncError(SyncError):
    """Stop the run; the message says what the user must do."""


class MissingFields(FatalSyncError):
    """The destination lacks fields the mapping writes."""

    def __init__(self, message: str, *, fields: list[str], **context: Any) -> None:
        super().__init__(message, **context)
        self.fields = fields


class SessionExpired(FatalSyncError):
    """The CRM session or token is no longer valid."""


class DailyLimitReached(FatalSyncError):
    """The CRM's daily API allowance is used up; ``resume_after`` says when to go on."""

    def __init__(self, message: str, *, resume_after: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.resume_after = resume_after


class RetriableError(SyncError):
    """A transient failure: the same request may succeed later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **context: Any):
        super().__init__(message, **context)
        self.retry_after = retry_after


class BatchRejected(SyncError):
    """A whole request was refused for the content of (at least) one of its records."""


class SyncStopped(SyncError):
    """A guard stopped the run before anything was written (feed stale, band changes)."""
