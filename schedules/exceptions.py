"""What the schedules layer raises, by how to recover (STYLE habit 4). Each message
says what to do; none carries a secret (failures are redacted first).

- ``AlreadyServing``: another `signals serve` holds the SQLite database; fatal for
  this process — stop the other one, or use PostgreSQL.
- ``PullNotConfigured``: the pull lacks its URL, query or cursor column; fatal until
  the configuration is fixed.
- ``Stopping``: not an error — the process is shutting down between batches; the work
  so far is committed and the next run resumes.
- ``JobFailed``: a job body raised; the scheduler records and alerts, and the next
  tick runs it again.
- ``Refused``: an HTTP request refused before anything was stored; the client fixes
  the request (auth, size, JSON) and sends it again.
"""

from __future__ import annotations


class AlreadyServing(Exception):
    """Another `serve` process holds the SQLite database; the message says what to do."""


class PullNotConfigured(Exception):
    """The pull needs both SIGNALS_PULL_URL and ``[schedules.pull] query``."""


class Stopping(Exception):  # noqa: N818  (a signal, not an error)
    """Raised between batches when the process is shutting down; the work so far is
    committed and the cursor saved, so the next run continues from there."""


class JobFailed(Exception):
    """A job body raised; the message is one redacted line."""


class Refused(Exception):
    """A request refused before anything was stored."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
