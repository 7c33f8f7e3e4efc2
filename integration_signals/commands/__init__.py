"""Command modules, one per layer; importing them registers their commands."""

from integration_signals.commands import store_cmds  # noqa: F401
from integration_signals.commands import syncs_cmds as syncs_cmds  # noqa: F401
