"""Charts drawn on the server as SVG strings: no JavaScript, no network, no files.

Every function is pure (data in, an ``<svg>`` string out). The output uses
presentation attributes only (``fill=``, ``stroke=``; never ``style=``, which the
Content-Security-Policy forbids) and no ``<script>``; every text is XML-escaped. Each
chart has ``role="img"`` and a ``<title>`` (its accessible name), a ``viewBox`` so CSS
can scale it (``width``/``height`` attributes give its natural size), and text that
inherits the page's font. Empty data draws the frame with a "no data yet" note.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SVG_NS = "http://www.w3.org/2000/svg"
PALETTE = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2", "#65a30d", "#db2777")
BAND_COLORS = {"healthy": "#059669", "watch": "#d97706", "at_risk": "#dc2626"}
IMPACT_COLORS = {
    "negligible": "#6b7280",
    "modest": "#2563eb",
    "strong": "#059669",
    "critical": "#7c3aed",
}
MUTED = "#6b7280"
GRID = "#d1d5db"
HIGHLIGHT = "#dc2626"
FONT = 12
EMPTY_TEXT = "no data yet"
MAX_LABEL = 32

# Characters XML 1.0 does not allow at all (escaping cannot save them): dropped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def esc(value: Any) -> str:
    """Text or attribute value, XML-escaped (quotes too), invalid characters dropped."""
    text = _INVALID_XML.sub("", str(value))
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _n(x: float) -> str:
    """A coordinate: two decimals at most, no trailing zeros."""
    if not math.isfinite(x):
        x = 0.0
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _short(text: Any, limit: int = MAX_LABEL) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _attrs(**attrs: Any) -> str:
    out = []
    for key, value in attrs.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        out.append(f' {name}="{esc(value)}"')
    return "".join(out)


def _text(x: float, y: float, content: Any, **attrs: Any) -> str:
    attrs.setdefault("font_size", FONT)
    attrs.setdefault("fill", "currentColor")
    return f'<text x="{_n(x)}" y="{_n(y)}"{_attrs(**attrs)}>{esc(content)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, **attrs: Any) -> str:
    return f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}"{_attrs(**attrs)}/>'


def _svg(
    width: float,
    height: float,
    title: str,
    body: Iterable[str],
    *,
    desc: str | None = None,
    kind: str = "chart",
) -> str:
    head = (
        f'<svg xmlns="{SVG_NS}" viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}"'
        f' height="{_n(height)}" role="img" class="chart chart-{esc(kind)}"'
        f' font-family="inherit" preserveAspectRatio="xMidYMid meet">'
        f"<title>{esc(title)}</title>"
    )
    if desc:
        head += f"<desc>{esc(desc)}</desc>"
    return head + "".join(body) + "</svg>"


def _empty(width: float, height: float, note: str = EMPTY_TEXT) -> list[str]:
    return [
        f'<rect x="0.5" y="0.5" width="{_n(width - 1)}" height="{_n(height - 1)}"'
        f' fill="none" stroke="{GRID}" stroke-dasharray="4 3"/>',
        _text(
            width / 2,
            height / 2 + FONT / 3,
            note,
            text_anchor="middle",
            fill=MUTED,
            font_size=min(FONT, max(7, height / 2.2)),
        ),
    ]


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _scale(lo: float, hi: float, out_lo: float, out_hi: float):  # type: ignore[no-untyped-def]
    span = (hi - lo) or 1.0

    def f(v: float) -> float:
        return out_lo + (v - lo) / span * (out_hi - out_lo)

    return f


# ---------------------------------------------------------------- sparkline


def sparkline(
    values: Sequence[float | None],
    width: float = 100,
    height: float = 24,
    *,
    title: str = "score trend",
    y_range: tuple[float, float] | None = (0, 100),
    band: str | None = None,
) -> str:
    """A small line of ``values`` (None = a gap, skipped) with the last point marked.
    ``y_range`` None scales to the data."""
    points = [(i, float(v)) for i, v in enumerate(values) if _finite(v)]
    if not points:
        return _svg(width, height, title, _empty(width, height, "–"), kind="sparkline")
    ys = [y for _, y in points]
    lo, hi = y_range if y_range is not None else (min(ys), max(ys))
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    pad = 2.0
    n = max(1, len(values) - 1)
    sx = _scale(0, n, pad, width - pad)
    sy = _scale(lo, hi, height - pad, pad)
    color = BAND_COLORS.get(band or "", PALETTE[0])
    coords = [(sx(i), sy(min(hi, max(lo, y)))) for i, y in points]
    if len(coords) == 1:
        coords = [(pad, coords[0][1]), (width - pad, coords[0][1])]
    path = " ".join(f"{_n(x)},{_n(y)}" for x, y in coords)
    last_x, last_y = coords[-1]
    body = [
        f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"'
        f' stroke-linejoin="round" stroke-linecap="round"/>',
        f'<circle cx="{_n(last_x)}" cy="{_n(last_y)}" r="2" fill="{color}"/>',
    ]
    desc = f"from {ys[0]:g} to {ys[-1]:g}"
    return _svg(width, height, title, body, desc=desc, kind="sparkline")


# ---------------------------------------------------------------- line chart


def _series_points(s: Mapping[str, Any]) -> list[tuple[float, float]]:
    if "points" in s:
        raw = [(p[0], p[1]) for p in s["points"]]
    else:
        raw = list(enumerate(s.get("values") or []))
    return [(float(x), float(y)) for x, y in raw if _finite(x) and _finite(y)]


def line_chart(
    series: Sequence[Mapping[str, Any]],
    *,
    x_labels: Sequence[str] | Sequence[tuple[float, str]] | None = None,
    y_range: tuple[float, float] | None = (0, 100),
    title: str,
    width: float = 640,
    height: float = 240,
    thresholds: Sequence[tuple[float, str]] = (),
    y_suffix: str = "",
) -> str:
    """Lines over a shared x axis (e.g. score history).

    ``series``: ``{"label": str, "values": [y | None, ...]}`` (x = index) or
    ``{"label": str, "points": [(x, y), ...]}``, optionally ``"color"``.
    ``x_labels``: index-aligned strings, or ``(x, text)`` ticks. ``thresholds``:
    dashed horizontal lines with a label, e.g. ``[(75, "healthy"), (50, "watch")]``.
    """
    # Room on the right for half of the last x label (a date).
    left, right, top, bottom = 40.0, 36.0, 12.0, 28.0
    legend = len(series) > 1
    if legend:
        bottom += 18
    plotted = [(s, _series_points(s)) for s in series]
    plotted = [(s, pts) for s, pts in plotted if pts]
    if not plotted:
        return _svg(width, height, title, _empty(width, height), kind="line")
    xs = [x for _, pts in plotted for x, _ in pts]
    ys = [y for _, pts in plotted for _, y in pts]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    y_lo, y_hi = y_range if y_range is not None else _nice_range(min(ys), max(ys))
    if y_hi <= y_lo:
        y_lo, y_hi = y_lo - 1, y_hi + 1
    sx = _scale(x_lo, x_hi, left, width - right)
    sy = _scale(y_lo, y_hi, height - bottom, top)
    body: list[str] = []
    for tick in _ticks(y_lo, y_hi, 5):
        y = sy(tick)
        body.append(_line(left, y, width - right, y, stroke=GRID, stroke_width=1))
        body.append(_text(left - 6, y + 4, f"{tick:g}{y_suffix}", text_anchor="end", fill=MUTED))
    for value, label in thresholds:
        if y_lo <= value <= y_hi:
            y = sy(value)
            body.append(
                _line(
                    left, y, width - right, y, stroke=MUTED, stroke_dasharray="4 3", stroke_width=1
                )
            )
            body.append(_text(width - right - 2, y - 3, label, text_anchor="end", fill=MUTED))
    for x, label in _x_ticks(x_labels, x_lo, x_hi):
        px = sx(x)
        body.append(_line(px, height - bottom, px, height - bottom + 4, stroke=MUTED))
        body.append(
            _text(px, height - bottom + 16, _short(label, 16), text_anchor="middle", fill=MUTED)
        )
    body.append(_line(left, height - bottom, width - right, height - bottom, stroke=MUTED))
    for k, (s, pts) in enumerate(plotted):
        color = s.get("color") or PALETTE[k % len(PALETTE)]
        coords = " ".join(f"{_n(sx(x))},{_n(sy(y))}" for x, y in pts)
        label = str(s.get("label") or f"series {k + 1}")
        body.append(f"<g><title>{esc(label)}</title>")
        body.append(
            f'<polyline points="{coords}" fill="none" stroke="{esc(color)}" stroke-width="2"'
            f' stroke-linejoin="round"/>'
        )
        for x, y in pts if len(pts) <= 60 else pts[-1:]:
            body.append(f'<circle cx="{_n(sx(x))}" cy="{_n(sy(y))}" r="2.5" fill="{esc(color)}"/>')
        body.append("</g>")
    if legend:
        body += _legend(
            [(str(s.get("label") or ""), s.get("color")) for s, _ in plotted], left, height - 8
        )
    return _svg(width, height, title, body, kind="line")


def _nice_range(lo: float, hi: float) -> tuple[float, float]:
    if lo == hi:
        return lo - 1, hi + 1
    step = _nice_step((hi - lo) / 4)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def _nice_step(raw: float) -> float:
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _ticks(lo: float, hi: float, count: int) -> list[float]:
    step = _nice_step((hi - lo) / max(1, count - 1))
    first = math.ceil(lo / step - 1e-9) * step
    out = []
    v = first
    while v <= hi + step * 1e-9 and len(out) < 50:
        out.append(round(v, 10))
        v += step
    return out


def _x_ticks(
    labels: Sequence[str] | Sequence[tuple[float, str]] | None, lo: float, hi: float
) -> list[tuple[float, str]]:
    if not labels:
        return []
    pairs: list[tuple[float, str]] = []
    for i, item in enumerate(labels):
        if isinstance(item, tuple):
            pairs.append((float(item[0]), str(item[1])))
        else:
            pairs.append((float(i), str(item)))
    pairs = [(x, t) for x, t in pairs if lo <= x <= hi]
    if len(pairs) > 7:
        every = math.ceil(len(pairs) / 6)
        keep = pairs[::every]
        if keep[-1] != pairs[-1]:
            keep.append(pairs[-1])
        pairs = keep
    return pairs


def _legend(items: Sequence[tuple[str, str | None]], x: float, y: float) -> list[str]:
    out = []
    for k, (label, color) in enumerate(items):
        c = color or PALETTE[k % len(PALETTE)]
        out.append(f'<rect x="{_n(x)}" y="{_n(y - 9)}" width="10" height="10" fill="{esc(c)}"/>')
        text = _short(label, 24)
        out.append(_text(x + 14, y, text))
        x += 24 + 7 * len(text)
    return out


# ---------------------------------------------------------------- Kaplan-Meier


def _step_path(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Post-steps: each value holds until the next day."""
    out: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(points):
        if i:
            out.append((x, out[-1][1]))
        out.append((x, y))
    return out


def _at_risk_at(curve: Sequence[Mapping[str, Any]], day: float) -> int:
    remaining = curve[0]["at_risk"] if curve else 0
    for p in curve:
        if p["day"] < day:
            remaining = p["at_risk"] - p.get("events", 0) - p.get("censored", 0)
        else:
            break
    return int(remaining)


def step_curves(
    curves: Sequence[Mapping[str, Any]],
    *,
    band: bool = True,
    censor_ticks: bool = True,
    at_risk_rows: Sequence[int] | None = None,
    title: str = "connections still active after activation (Kaplan-Meier)",
    width: float = 640,
    height: float = 300,
    x_max: float | None = None,
    marks: Sequence[int] = (7, 30, 60, 90),
    y_min: float = 0.0,
) -> str:
    """Kaplan-Meier step curves, one per cohort, with the 95% band shaded, censoring
    ticks and, below, the numbers at risk at ``at_risk_rows`` days.

    ``curves``: ``{"label": str, "curve": [{"day", "retained", "lower"?, "upper"?,
    "at_risk", "events", "censored"}, ...]}`` (``scoring.views`` retention points).
    ``y_min`` raises the axis floor (e.g. 0.6 when every curve stays above it) so
    differences near 100% stay visible; lower values are drawn on the axis.
    """
    drawn = [c for c in curves if c.get("curve")]
    rows = list(at_risk_rows or ())
    left, right, top = (70.0 if rows else 44.0), 24.0, 14.0
    axis_h = 30.0
    table_h = (16.0 * (len(drawn) + 1) + 6) if rows and drawn else 0.0
    legend_h = 18.0 if len(drawn) > 1 else 0.0
    plot_bottom = height - axis_h - table_h - legend_h
    if not drawn:
        return _svg(width, height, title, _empty(width, height), kind="km")
    horizon = x_max or max(max(p["day"] for p in c["curve"]) for c in drawn)
    horizon = max(float(horizon), 1.0, *(float(r) for r in rows))
    sx = _scale(0, horizon, left, width - right)
    y_min = min(max(0.0, float(y_min)), 0.9)
    sy = _scale(y_min, 1, plot_bottom, top)

    def cy(v: float) -> float:  # values below a raised floor sit on the axis
        return sy(max(y_min, v))

    body: list[str] = []
    for tick in _ticks(y_min, 1.0, 5):
        y = sy(tick)
        body.append(_line(left, y, width - right, y, stroke=GRID))
        body.append(_text(left - 6, y + 4, f"{tick * 100:.0f}%", text_anchor="end", fill=MUTED))
    for mark in marks:
        if mark <= horizon:
            x = sx(mark)
            body.append(_line(x, top, x, plot_bottom, stroke=GRID, stroke_dasharray="3 3"))
            body.append(_text(x, plot_bottom + 14, f"day {mark}", text_anchor="middle", fill=MUTED))
    body.append(_line(left, plot_bottom, width - right, plot_bottom, stroke=MUTED))
    body.append(
        _text(
            (left + width - right) / 2,
            plot_bottom + 27,
            "days since activation",
            text_anchor="middle",
            fill=MUTED,
        )
    )
    for k, c in enumerate(drawn):
        color = c.get("color") or PALETTE[k % len(PALETTE)]
        pts = sorted(c["curve"], key=lambda p: p["day"])
        if pts[0]["day"] > 0:
            pts = [{"day": 0, "retained": 1.0, "lower": 1.0, "upper": 1.0, "censored": 0}, *pts]
        end = max(pts[-1]["day"], 0)
        label = str(c.get("label") or f"cohort {k + 1}")
        body.append(f"<g><title>{esc(label)}</title>")
        if band and all(_finite(p.get("lower")) and _finite(p.get("upper")) for p in pts):
            upper = _step_path([(p["day"], p["upper"]) for p in pts] + [(end, pts[-1]["upper"])])
            lower = _step_path([(p["day"], p["lower"]) for p in pts] + [(end, pts[-1]["lower"])])
            poly = [(sx(x), cy(y)) for x, y in upper] + [(sx(x), cy(y)) for x, y in reversed(lower)]
            body.append(
                f'<polygon points="{" ".join(f"{_n(x)},{_n(y)}" for x, y in poly)}"'
                f' fill="{esc(color)}" fill-opacity="0.15" stroke="none"/>'
            )
        steps = _step_path([(p["day"], p["retained"]) for p in pts])
        coords = " ".join(f"{_n(sx(x))},{_n(cy(y))}" for x, y in steps)
        body.append(
            f'<polyline points="{coords}" fill="none" stroke="{esc(color)}" stroke-width="2"/>'
        )
        if censor_ticks:
            for p in pts:
                if p.get("censored"):
                    x, y = sx(p["day"]), cy(p["retained"])
                    body.append(_line(x, y - 4, x, y + 4, stroke=color, stroke_width=1.5))
        body.append("</g>")
    y = plot_bottom + axis_h
    if legend_h:
        body += _legend([(str(c.get("label") or ""), c.get("color")) for c in drawn], left, y + 12)
        y += legend_h
    if table_h:
        y += 14
        body.append(_text(4, y, "at risk", fill=MUTED, font_weight="bold"))
        for day in rows:
            body.append(_text(sx(day), y, f"d{day}", text_anchor="middle", fill=MUTED))
        for k, c in enumerate(drawn):
            y += 16
            color = c.get("color") or PALETTE[k % len(PALETTE)]
            body.append(_text(4, y, _short(c.get("label") or "", 9), fill=color))
            for day in rows:
                body.append(
                    _text(sx(day), y, str(_at_risk_at(c["curve"], day)), text_anchor="middle")
                )
    return _svg(width, height, title, body, kind="km")


# ---------------------------------------------------------------- horizontal bars


def hbars(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "adoption funnel",
    width: float = 640,
    bar_height: float = 22,
    value_format: str = "{:,}",
) -> str:
    """Horizontal bars (a funnel): ``{"label", "value", "note"?, "highlight"?}``.
    A highlighted row (e.g. the largest drop) is drawn in red; ``note`` is printed
    after the value (e.g. "62% of installed")."""
    label_w = 150.0
    gap = 8.0
    usable = [r for r in rows if _finite(r.get("value"))]
    height = max(48.0, len(rows) * (bar_height + gap) + gap)
    if not usable:
        return _svg(width, height, title, _empty(width, height), kind="bars")
    top = max(float(r["value"]) for r in usable) or 1.0
    value_w = 170.0
    sx = _scale(0, top, 0, width - label_w - value_w)
    body: list[str] = []
    y = gap
    for r in rows:
        label = str(r.get("label", ""))
        body.append(f"<g><title>{esc(label)}</title>")
        body.append(_text(label_w - 8, y + bar_height * 0.7, _short(label, 22), text_anchor="end"))
        value = r.get("value")
        if _finite(value):
            w = max(1.0, sx(float(value))) if value else 0.0
            color = HIGHLIGHT if r.get("highlight") else PALETTE[0]
            body.append(
                f'<rect x="{_n(label_w)}" y="{_n(y)}" width="{_n(w)}" height="{_n(bar_height)}"'
                f' fill="{color}" rx="2"/>'
            )
            text = value_format.format(value)
            if r.get("note"):
                text += f" · {r['note']}"
            body.append(
                _text(
                    label_w + w + 6,
                    y + bar_height * 0.7,
                    _short(text, 30),
                    fill=HIGHLIGHT if r.get("highlight") else "currentColor",
                )
            )
        else:
            body.append(_text(label_w + 6, y + bar_height * 0.7, "n/a", fill=MUTED))
        body.append("</g>")
        y += bar_height + gap
    return _svg(width, height, title, body, kind="bars")


# ---------------------------------------------------------------- intervals


def interval_chart(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "lift against matched non-adopters (95% interval)",
    unit: str = "pts",
    width: float = 640,
    row_height: float = 26,
) -> str:
    """Point estimates with 95% intervals around a zero line (impact lift):
    ``{"label", "estimate", "lower", "upper", "band"?}``; a row without an estimate
    says "n/a"."""
    label_w, right = 150.0, 60.0
    axis_h = 26.0
    height = max(60.0, len(rows) * row_height + axis_h + 10)
    known = [r for r in rows if _finite(r.get("estimate"))]
    if not known:
        return _svg(width, height, title, _empty(width, height), kind="interval")
    vals = [0.0]
    for r in known:
        vals.append(float(r["estimate"]))
        vals += [float(r[k]) for k in ("lower", "upper") if _finite(r.get(k))]
    lo, hi = _nice_range(min(vals), max(vals))
    sx = _scale(lo, hi, label_w, width - right)
    plot_bottom = height - axis_h
    body: list[str] = []
    for tick in _ticks(lo, hi, 5):
        x = sx(tick)
        body.append(_line(x, 4, x, plot_bottom, stroke=GRID))
        body.append(
            _text(
                x, plot_bottom + 16, f"{tick:+g} {unit}".strip(), text_anchor="middle", fill=MUTED
            )
        )
    zero = sx(0)
    body.append(_line(zero, 2, zero, plot_bottom, stroke="currentColor", stroke_width=1.5))
    y = 6.0
    for r in rows:
        mid = y + row_height / 2
        label = str(r.get("label", ""))
        body.append(f"<g><title>{esc(label)}</title>")
        body.append(_text(label_w - 8, mid + 4, _short(label, 22), text_anchor="end"))
        est = r.get("estimate")
        if _finite(est):
            color = IMPACT_COLORS.get(str(r.get("band")), PALETTE[0])
            if _finite(r.get("lower")) and _finite(r.get("upper")):
                x1, x2 = sx(float(r["lower"])), sx(float(r["upper"]))
                body.append(_line(x1, mid, x2, mid, stroke=color, stroke_width=2))
                body.append(_line(x1, mid - 5, x1, mid + 5, stroke=color, stroke_width=2))
                body.append(_line(x2, mid - 5, x2, mid + 5, stroke=color, stroke_width=2))
            body.append(
                f'<circle cx="{_n(sx(float(est)))}" cy="{_n(mid)}" r="4.5" fill="{color}"/>'
            )
            body.append(_text(width - right + 6, mid + 4, f"{float(est):+.1f}", fill=color))
        else:
            body.append(_text(zero + 6, mid + 4, "n/a", fill=MUTED))
        body.append("</g>")
        y += row_height
    return _svg(width, height, title, body, kind="interval")
