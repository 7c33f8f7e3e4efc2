"""The one call each page makes to draw a chart, so the drawing can change without
touching handlers or templates. Drawing itself is `web.svg` (inline SVG, presentation
attributes only — the CSP forbids inline styles — every text escaped)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from integration_signals.web import svg


def history_chart(
    points: Sequence[Mapping[str, Any]],
    *,
    bands: Mapping[str, int] | None = None,
    width: int = 640,
    height: int = 200,
) -> Markup:
    """The account's daily score (0-100), with the band thresholds as dashed lines."""
    bands = bands or {"healthy": 75, "watch": 50}
    values = [p["score"] for p in points]
    labels = [str(p["day"])[:10] for p in points]
    return Markup(
        svg.line_chart(
            [{"label": "score", "values": values}],
            x_labels=labels,
            title="Score history",
            width=width,
            height=height,
            thresholds=[(bands["healthy"], "healthy"), (bands["watch"], "watch")],
        )
    )


def trend_sparkline(row: Mapping[str, Any], *, width: int = 88, height: int = 22) -> Markup:
    """A portfolio row's 30-day score trend (``row["trend_30d"]``), in its band's colour."""
    name = row.get("name") or row.get("account_id")
    return Markup(
        svg.sparkline(
            [p["score"] for p in row.get("trend_30d") or []],
            width=width,
            height=height,
            title=f"{name}: score over 30 days",
            band=row.get("band"),
        )
    )
