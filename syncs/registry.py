"""The destinations, by name, and what is asked of all of them at once.

A destination is one folder ``syncs/<name>/`` whose ``__init__`` exposes ``DESTINATION``
(a ``syncs.contract.Destination``): the registry finds it, with no list to edit. One
defined elsewhere (a test's fake CRM) joins with ``register(destination)``.

Everything that lists destinations asks here: the scheduler's sync jobs, the CLI's
`signals sync <destination>` commands, the bot's CRM links (handed to the bot by the
composing layer), the demo's CRM preview, redaction and start-up validation of the
``[syncs.<name>]`` tables.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading

from pydantic import ValidationError

from integration_signals.config import Config, ConfigError, Settings, error_line
from integration_signals.syncs.contract import Destination, validate_section
from integration_signals.syncs.exceptions import FatalSyncError

_registered: dict[str, Destination] = {}
_discovered = False
_lock = threading.Lock()


def _discover() -> None:
    """Import every subpackage of ``integration_signals.syncs`` exposing ``DESTINATION``
    (once; built-in folders first, in name order)."""
    global _discovered
    if _discovered:
        return
    with _lock:
        if _discovered:
            return
        package = importlib.import_module("integration_signals.syncs")
        found: dict[str, Destination] = {}
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if not info.ispkg:
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            destination = getattr(module, "DESTINATION", None)
            if isinstance(destination, Destination):
                found[destination.name] = destination
        # Built-ins keep their historic order; registered ones follow.
        ordered = {n: found.pop(n) for n in ("salesforce", "hubspot") if n in found}
        ordered.update(found)
        ordered.update(_registered)
        _registered.clear()
        _registered.update(ordered)
        _discovered = True


def register(destination: Destination) -> Destination:
    """Add (or replace, by name) a destination defined outside ``syncs/``."""
    _discover()
    _registered[destination.name] = destination
    return destination


def unregister(name: str) -> None:
    """Remove a destination added with ``register`` (tests clean up with it)."""
    _discover()
    _registered.pop(name, None)


def destinations() -> list[Destination]:
    """Every destination, built-in ones first."""
    _discover()
    return list(_registered.values())


def names() -> list[str]:
    return [d.name for d in destinations()]


def get_destination(name: str) -> Destination:
    _discover()
    found = _registered.get(name)
    if found is None:
        raise FatalSyncError(f"unknown destination {name!r}; choose one of {', '.join(names())}")
    return found


def validate_config(config: Config, source: str) -> None:
    """Refuse, at start-up, a ``[syncs.<name>]`` table its destination would refuse,
    or one no destination owns, with the one line ``load_config`` prints."""
    known = {d.name: d for d in destinations()}
    for name in config.syncs.model_extra or {}:
        if name not in known:
            raise ConfigError(
                f"config {source}: key syncs.{name}: unknown key; fix or remove it"
                " (defaults: `signals init`)"
            )
    for name, destination in known.items():
        try:
            validate_section(config, name, destination.settings_model)
        except ValidationError as exc:
            raise ConfigError(error_line(source, exc, prefix=("syncs", name))) from None


def secrets(settings: Settings) -> list[str]:
    """Every destination's secret values that are set."""
    return [value for d in destinations() for value in d.secrets(settings) if value]


def redact(text: str | None, settings: Settings) -> str | None:
    """No credential value ever reaches a report or a run record: ``Settings.redact``
    (every destination's secrets are registered with it once discovered)."""
    _discover()
    return settings.redact(text)


def without_credentials(settings: Settings) -> Settings:
    """``settings`` with every destination's environment variables unset (the demo's
    offline preview contacts no CRM)."""
    cleared = {name for d in destinations() for name in d.env_model.model_fields}
    return settings.model_copy(update=dict.fromkeys(sorted(cleared)))


def configured(settings: Settings) -> list[Destination]:
    """The destinations whose credentials are set (the scheduler syncs these)."""
    return [d for d in destinations() if d.has_credentials(settings)]


def record_links(config: Config, settings: Settings) -> dict[str, str]:
    """Destination name -> link template of one record (``{id}`` marks the id), for
    the destinations that have one; the bot's CRM links."""
    links = {d.name: d.record_url(config, settings) for d in destinations()}
    return {name: url for name, url in links.items() if url}
