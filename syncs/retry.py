"""Staying under a CRM's rate limit, and backing off when a request fails transiently."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from integration_signals.syncs.exceptions import RetriableError

T = TypeVar("T")


class SlidingWindowLimiter:
    """At most ``limit`` requests in any ``window`` seconds, as the CRM counts them.

    A slot is taken before a request is sent and stamped with the moment its response
    arrived (``done``): the server counts a request somewhere between those two moments,
    so spacing request i+limit at least ``window`` after the response of request i keeps
    the server's count under the limit whatever the latency. Thread-safe.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._done: deque[float] = deque()
        self._in_flight = 0
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                while self._done and self._done[0] <= now - self.window:
                    self._done.popleft()
                if len(self._done) + self._in_flight < self.limit:
                    self._in_flight += 1
                    return
                # Every slot in flight: poll; otherwise wait for the oldest to age out.
                wait = 0.01 if not self._done else self._done[0] + self.window - now + 0.005
                self.waited += wait
            self._sleep(wait)

    def done(self) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._done.append(self._clock())

    def used(self) -> int:
        with self._lock:
            return len(self._done) + self._in_flight

    def pause(self, seconds: float) -> None:
        """The server said the window is full: treat it as full for ``seconds``."""
        with self._lock:
            fill = self._clock() + seconds - self.window
            self._done = deque([fill] * self.limit)


class Backoff:
    """Retries a call on ``RetriableError``: the vendor's hint when given, otherwise
    exponential waits from ``initial`` capped at ``cap``; gives up after ``attempts``.

    Hand-written on purpose (the project does not depend on tenacity): the wait comes
    from the error's ``retry_after``, every retry is counted for the run's report and
    the sleep is injected for tests; tenacity would need a custom wait, ``before_sleep``
    and ``sleep`` to say the same in more lines. Both CRM clients retry through this;
    Slack calls retry in slack_sdk's own ``RateLimitErrorRetryHandler``."""

    def __init__(
        self,
        *,
        attempts: int,
        initial: float,
        cap: float,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[RetriableError, float], None] | None = None,
    ) -> None:
        self.attempts = attempts
        self.initial = initial
        self.cap = cap
        self._sleep = sleep
        self._on_retry = on_retry
        self.retries = 0

    def wait_for(self, error: RetriableError, attempt: int) -> float:
        if error.retry_after is not None:
            return max(0.0, error.retry_after)
        return min(self.cap, self.initial * (2 ** (attempt - 1)))

    def call(self, func: Callable[[], T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return func()
            except RetriableError as exc:
                if attempt >= self.attempts:
                    raise
                wait = self.wait_for(exc, attempt)
                self.retries += 1
                if self._on_retry is not None:
                    self._on_retry(exc, wait)
                self._sleep(wait)
