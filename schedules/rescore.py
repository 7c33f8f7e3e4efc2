"""Rescoring after HTTP ingest, coalesced.

Every accepted ingest request hands the accounts it touched to one worker thread,
which rescores them and evaluates their signals (``pipeline.after_ingest``). Requests
that arrive while it works are merged into its next round, so a steady stream of
requests costs one rescoring per round instead of one per request, and the answer does
not wait for scoring. Nothing depends on this queue for correctness: ingest marks the
accounts changed in the store, so if the process stops with accounts still queued, the
next ``score`` run rescores them.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from integration_signals.config import Config
from integration_signals.schedules.pipeline import after_ingest
from integration_signals.store.ingest import IngestReport
from integration_signals.store.sql import utcnow

log = logging.getLogger("signals.rescore")


class Rescorer:
    """One background thread rescoring the accounts ingest touched."""

    def __init__(self, engine: Engine, config: Config) -> None:
        self.engine = engine
        self.config = config
        self.rounds = 0
        self.last_error: str | None = None
        self._pending: set[str] = set()
        self._busy = False
        self._stopping = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="signals-rescore", daemon=True)
        self._thread.start()

    def submit(self, accounts: set[str]) -> int:
        """Queue ``accounts``; returns how many are waiting now."""
        with self._cond:
            self._pending |= accounts
            self._cond.notify()
            return len(self._pending)

    def idle(self) -> bool:
        with self._cond:
            return not self._pending and not self._busy

    def stop(self, timeout: float = 10) -> None:
        """Finish the round in progress (and what is queued, within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while not self.idle() and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._cond:
            self._stopping = True
            left = len(self._pending)
            self._cond.notify()
        if left:
            log.warning(
                "%d accounts still queued for rescoring; the next score run takes them", left
            )
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()) + 1)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                batch, self._pending = self._pending, set()
                self._busy = True
            try:
                report = IngestReport(touched_accounts=batch)
                result = after_ingest(self.engine, self.config, report, now=utcnow())
                self.rounds += 1
                self.last_error = result.get("error")
            finally:
                with self._cond:
                    self._busy = False
