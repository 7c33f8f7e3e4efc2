"""The one call each page makes to draw a chart, so the drawing can be swapped (e.g. for
`web.svg`) without touching handlers or templates. Charts are inline SVG with
presentation attributes only (the CSP forbids inline styles) and escaped text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

BAND_COLOURS = {"healthy": "#1f8a4c", "watch": "#b7791f", "at_risk": "#c53030"}


def history_chart(
    points: Sequence[dict[str, Any]], *, width: int = 640, height: int = 160
) -> Markup:
    """The account's daily score (0-100) as a line with its band thresholds; an empty
    figure note when there is no history yet."""
    try:  # the shared chart library, when it offers a line chart
        from integration_signals.web import svg  # type: ignore[attr-defined]

        line_chart = getattr(svg, "score_history", None)
        if line_chart is not None:
            return Markup(line_chart(points, width=width, height=height))
    except ImportError:
        pass
    return _polyline(points, width=width, height=height)


def _polyline(points: Sequence[dict[str, Any]], *, width: int, height: int) -> Markup:
    if len(points) < 2:
        return Markup('<p class="muted">Not enough score history for a chart yet.</p>')
    pad_l, pad_r, pad_t, pad_b = 28, 8, 8, 18
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    n = len(points)

    def x(i: int) -> float:
        return pad_l + w * i / (n - 1)

    def y(score: float) -> float:
        return pad_t + h * (1 - max(0.0, min(100.0, float(score))) / 100)

    coords = " ".join(f"{x(i):.1f},{y(p['score']):.1f}" for i, p in enumerate(points))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img"'
        f' aria-label="Score history, {escape(str(points[0]["day"]))} to'
        f' {escape(str(points[-1]["day"]))}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for level in (0, 50, 75, 100):
        parts.append(
            f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(level):.1f}" y2="{y(level):.1f}"'
            f' stroke="#e2e8f0" stroke-width="1"/>'
            f'<text x="{pad_l - 4}" y="{y(level) + 3:.1f}" text-anchor="end" font-size="9"'
            f' fill="#718096">{level}</text>'
        )
    parts.append(
        f'<polyline points="{coords}" fill="none" stroke="#2b6cb0" stroke-width="2"'
        ' stroke-linejoin="round"/>'
    )
    last = points[-1]
    colour = BAND_COLOURS.get(str(last.get("band")), "#2b6cb0")
    parts.append(
        f'<circle cx="{x(n - 1):.1f}" cy="{y(last["score"]):.1f}" r="3.5" fill="{colour}"/>'
    )
    for i in (0, n - 1):
        anchor = "start" if i == 0 else "end"
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - 4}" text-anchor="{anchor}" font-size="9"'
            f' fill="#718096">{escape(str(points[i]["day"]))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
