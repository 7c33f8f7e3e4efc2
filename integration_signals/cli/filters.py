"""The filters `signals score`, `signals signals` and `signals tasks` share: --band,
--segment, --owner, --sort, --limit and --wide.

Filters and --sort apply to --json as well (people script with them). --limit applies
to --json only when given: a table shows a screenful by default, --json everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer

T = TypeVar("T")

BANDS = ("healthy", "watch", "at_risk")
SCREENFUL = 20

BAND_OPT = typer.Option(None, "--band", help="Only accounts in this band: healthy, watch, at_risk.")
SEGMENT_OPT = typer.Option(
    None, "--segment", help="Only this segment: smb, mid_market, enterprise."
)
LIMIT_OPT = typer.Option(
    None,
    "--limit",
    min=0,
    help=f"Show at most N rows (0 = all; tables default to {SCREENFUL}, --json to all).",
)
WIDE_OPT = typer.Option(False, "--wide", help="Every column at full width, however wide.")


def band(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().lower().replace("-", "_").replace(" ", "_")
    if text not in BANDS:
        raise typer.BadParameter(
            f"{value!r} is not a band; use one of {', '.join(BANDS)}", param_hint="--band"
        )
    return text


def segment(value: str | None) -> str | None:
    if value is None:
        return None
    from integration_signals.store.accounts import BadAccount, normalize_segment

    try:
        return normalize_segment(value)
    except BadAccount as exc:
        raise typer.BadParameter(str(exc), param_hint="--segment") from None


def same_person(wanted: str | None, *people: str | None) -> bool:
    """--owner matches case-insensitively, ignoring surrounding spaces."""
    if wanted is None:
        return True
    key = wanted.strip().lower()
    return any(p is not None and p.strip().lower() == key for p in people)


def sort_key(
    value: str | None, keys: dict[str, Callable[[Any], Any]], *, option: str = "--sort"
) -> tuple[Callable[[Any], Any], bool] | None:
    """``--sort FIELD`` (or ``-FIELD`` for descending) as a key function and reverse."""
    if value is None:
        return None
    text = value.strip().lower()
    reverse = text.startswith("-")
    name = text.lstrip("-+")
    if name not in keys:
        raise typer.BadParameter(
            f"{value!r} is not a sort field; use one of {', '.join(keys)}"
            " (prefix - for descending, e.g. -score)",
            param_hint=option,
        )
    return keys[name], reverse


def limited(rows: Sequence[T], limit: int | None, *, as_json: bool) -> list[T]:
    """The rows to show: --limit N (0 = all); a screenful in a table, all in --json."""
    if limit is None:
        limit = 0 if as_json else SCREENFUL
    return list(rows) if limit == 0 else list(rows[:limit])


def more_line(shown: int, matched: int, noun: str = "") -> str | None:
    """The line under a cut table: how many more and how to see them."""
    hidden = matched - shown
    if hidden <= 0:
        return None
    return f"… {hidden:,} more{(' ' + noun) if noun else ''} (use --limit or --json)"
