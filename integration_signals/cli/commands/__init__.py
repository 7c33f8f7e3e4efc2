"""Command modules, one per layer; importing them registers their commands, and
`arrange` then gives each its help panel (``app.PANELS``)."""

from integration_signals.cli.app import arrange
from integration_signals.cli.commands import (
    bot_cmds,  # noqa: F401
    impact_cmds,  # noqa: F401
    scoring_cmds,  # noqa: F401
    serve_cmds,  # noqa: F401
    signals_cmds,  # noqa: F401
    store_cmds,  # noqa: F401
    syncs_cmds,  # noqa: F401
    users_cmds,  # noqa: F401
)

arrange()
