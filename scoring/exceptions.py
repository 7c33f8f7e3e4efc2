"""What the scoring layer raises, by how to recover (STYLE habit 4). Each message says
what to do; none carries a secret or a whole record.

- ``ModelError``: the outcome model cannot be trained or used as asked (no stored
  model yet, snapshots without both churned and retained customers); the message says
  which command or input to change.
- ``ImpactError``: an impact analysis cannot run as asked; the message names the input.
- ``TaskRefused``: a task operation that cannot be done (no such task, claimed by
  someone else, already done); nothing changed, and the message is for the user.
"""

from __future__ import annotations


class ModelError(ValueError):
    """The model cannot be trained or used as asked; the message says what to do."""


class ImpactError(ValueError):
    """The analysis cannot run as asked; the message says which input and what to do."""


class TaskRefused(Exception):
    """A task operation that cannot be done; the message says why and what to do."""

    def __init__(self, message: str, *, task_id: int, status: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.status = status
