"""What the composing layer hands to the layers beside each other: they never import
one another (the import-linter contract), so anything the bot needs to know about
the CRM destinations comes from here."""

from __future__ import annotations

from integration_signals.bot.views import CrmLinks
from integration_signals.config import Config, Settings
from integration_signals.syncs import registry


def crm_links(config: Config, settings: Settings) -> CrmLinks:
    """Every registered destination's label and record link template, for the bot's
    dashboard card."""
    return CrmLinks(
        labels={d.name: d.label for d in registry.destinations()},
        urls=registry.record_links(config, settings),
    )
