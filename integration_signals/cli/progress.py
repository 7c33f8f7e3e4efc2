"""Progress of a command's long steps, always on stderr (stdout keeps the report or its
one JSON document).

At a terminal: a rich progress bar (spinner, the step running, steps done, elapsed
time) that disappears when the command ends. Elsewhere (a pipe, a log file, CI, tests):
one plain line per finished step with its duration, because a bar redrawn with
control codes is noise in a log while silence for 30 seconds looks like a hang.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from integration_signals.cli.runtime import stderr


class Steps:
    """``total`` named steps of one command: ``with steps.step("score accounts"): ...``
    for each (or ``steps.done(name)`` after work whose progress arrives as callbacks).

    Use as a context manager; the bar is shown only inside it."""

    def __init__(self, label: str, total: int, *, console: Console | None = None) -> None:
        self.label = label
        self.total = total
        self.console = console or stderr
        self.finished = 0
        self._started = time.perf_counter()
        self._last = self._started
        self._bar: Progress | None = None
        self._task = None

    def __enter__(self) -> Steps:
        self._started = self._last = time.perf_counter()
        if self.console.is_terminal:
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn(f"{self.label}: {{task.description}}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("starting", total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def running(self, name: str) -> None:
        """Say which step runs now (the bar's text; plain output waits for the end)."""
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=name)

    def done(self, name: str) -> None:
        """One step finished: advance the bar, or print its plain line."""
        now = time.perf_counter()
        self.finished += 1
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, description=name)
        else:
            self.console.print(
                f"{self.label} {self.finished}/{self.total} {name}: {now - self._last:.1f}s",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        self._last = now

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Run one step: shown while it runs, counted when it ends."""
        self.running(name)
        yield
        self.done(name)
