"""PNG charts for `--plot` (matplotlib, Agg backend: no display needed).

Imported only by a command given ``--plot``: matplotlib costs about half a second to
import, and `signals --help` must not pay it. Every chart is 10 x 6 inches at 120 dpi
(1200 x 720 px) with text of 10 pt or more, so it reads at 100% zoom. The web
dashboard draws the same charts as inline SVG (``web/svg.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator, PercentFormatter  # noqa: E402

# The dashboard's colours, so a PNG and the web page agree on what a band looks like.
from integration_signals.web.svg import (  # noqa: E402
    BAND_COLORS,
    HIGHLIGHT,
    IMPACT_COLORS,
    MUTED,
    PALETTE,
)

SIZE = (10.0, 6.0)  # inches
DPI = 120
STYLE = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def wrote_chart(path: Path) -> str:
    """Say on stderr where a `--plot` PNG went (stdout keeps the report, or its one
    JSON document, which gains a ``plot`` key); the path as a string."""
    from integration_signals.cli.runtime import stderr

    stderr.print(f"chart written to {path}", markup=False, soft_wrap=True)
    return str(path)


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    fig.savefig(path, format="png", dpi=DPI)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- retention


def _at_risk(curve: Sequence[Mapping[str, Any]], day: int) -> int:
    """Connections still followed at the start of ``day`` (lifelines' at-risk counts)."""
    remaining = curve[0]["at_risk"] if curve else 0
    for p in curve:
        if p["day"] >= day:
            break
        remaining = p["at_risk"] - p["events"] - p["censored"]
    return remaining


def _day_ticks(horizon: int) -> list[int]:
    step = 30 if horizon <= 270 else 60 if horizon <= 540 else 90
    end = max(90, horizon)
    return list(range(0, end + 1, step))


def retention_plot(series: Sequence[Mapping[str, Any]], path: Path, *, title: str) -> Path:
    """Kaplan-Meier step curves with their 95% bands, censoring ticks and the numbers
    at risk under the axis (one row per curve, as lifelines' ``add_at_risk_counts``).

    ``series``: ``{"label", "short"?, "connections", "curve": [{"day", "retained",
    "lower", "upper", "at_risk", "events", "censored"}]}`` per curve (``short`` labels
    the at-risk row) (``scoring.views.band_of``
    gives the points)."""
    shown = [s for s in series if s["curve"]]
    horizon = max((p["day"] for s in shown for p in s["curve"]), default=0)
    ticks = _day_ticks(horizon)
    rows = max(1, len(shown))
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=SIZE)
        grid = fig.add_gridspec(2, 1, height_ratios=[5.2, 0.55 + 0.32 * rows], hspace=0.32)
        ax = fig.add_subplot(grid[0])
        table = fig.add_subplot(grid[1], sharex=ax)
        lowest = 1.0
        for n, s in enumerate(shown):
            color = PALETTE[n % len(PALETTE)]
            curve = list(s["curve"])
            days = [p["day"] for p in curve]
            retained = [p["retained"] for p in curve]
            lower = [p.get("lower", p["retained"]) for p in curve]
            upper = [p.get("upper", p["retained"]) for p in curve]
            lowest = min(lowest, *lower)
            ax.step(
                days,
                retained,
                where="post",
                color=color,
                linewidth=2.2,
                label=f"{s['label']} (n={s['connections']})",
            )
            ax.fill_between(
                days,
                lower,
                upper,
                step="post",
                color=color,
                alpha=0.16 if len(shown) > 1 else 0.22,
                linewidth=0,
            )
            cens = [(p["day"], p["retained"]) for p in curve if p["censored"]]
            if cens:
                ax.plot(
                    [d for d, _ in cens],
                    [r for _, r in cens],
                    linestyle="none",
                    marker="|",
                    markersize=9,
                    markeredgewidth=1.4,
                    color=color,
                )
            for day in ticks:
                table.text(
                    day,
                    rows - 1 - n,
                    f"{_at_risk(curve, day):,}",
                    ha="center",
                    va="center",
                    fontsize=10,
                    color=color,
                )
            table.text(
                -0.045,
                rows - 1 - n,
                str(s.get("short") or s["label"]),
                ha="right",
                va="center",
                fontsize=10,
                color=color,
                transform=table.get_yaxis_transform(),
            )
        # Zoom in when every curve and band stays high: 90% vs 95% must stay visible.
        floor = max(0.0, (int((lowest - 0.05) * 10)) / 10)
        ax.set_ylim(floor, 1.02)
        ax.set_xlim(0, ticks[-1])
        ax.set_xticks(ticks)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("days since activation (first successful sync)")
        ax.set_ylabel("connections still active")
        ax.set_title(title, loc="left")
        ax.grid(alpha=0.3)
        ax.plot([], [], linestyle="none", marker="|", color=MUTED, label="censored (still active)")
        ax.fill_between([], [], [], color=MUTED, alpha=0.22, label="95% confidence band")
        ax.legend(loc="lower left", frameon=True, framealpha=0.9)
        table.set_ylim(-0.6, rows - 0.4)
        table.set_title("number at risk", loc="left", fontsize=10, color=MUTED)
        table.axis("off")
        fig.subplots_adjust(left=0.17, right=0.96, top=0.88, bottom=0.04)
        return _save(fig, path)


# ---------------------------------------------------------------- funnel

STAGES = (
    ("installed", "installed", None),
    ("activated", "activated", "installed"),
    ("active now", "active", "activated"),
    ("retained 30 days", "retained_30", "eligible_30"),
    ("retained 90 days", "retained_90", "eligible_90"),
)
# `largest_drop["to"]` (scoring.funnel) -> the stage label above.
_DROP_TO = {"activated": "activated", "active": "active now"}


def funnel_plot(rows: Sequence[Mapping[str, Any]], path: Path, *, title: str) -> Path:
    """Installed -> activated -> active -> retained 30 / 90 days as grouped bars, one
    group per integration (``scoring.funnel.funnel_rows``); each integration's largest
    drop is the red bar, labelled with the share lost. One integration gets one
    group with every bar labelled."""
    rows = list(rows)
    one = len(rows) == 1
    with plt.rc_context(STYLE):
        if one:
            fig, ax = plt.subplots(figsize=SIZE)
            _funnel_one(ax, rows[0])
        else:
            wide = min(16.0, max(SIZE[0], 0.6 * len(rows) + 2))
            fig, ax = plt.subplots(figsize=(wide, SIZE[1]))
            _funnel_many(ax, rows)
        ax.set_title(title, loc="left")
        fig.tight_layout()
        return _save(fig, path)


def _drop_stage(row: Mapping[str, Any]) -> str | None:
    drop = row.get("largest_drop")
    if not drop or not drop["lost"]:
        return None
    return _DROP_TO.get(drop["to"], drop["to"])


def _funnel_one(ax: Any, row: Mapping[str, Any]) -> None:
    drop_at = _drop_stage(row)
    labels = [label for label, _, _ in STAGES]
    counts = [row[key] for _, key, _ in STAGES]
    colors = [HIGHLIGHT if label == drop_at else PALETTE[0] for label in labels]
    bars = ax.bar(labels, counts, color=colors, width=0.6)
    top = max(counts, default=0) or 1
    for bar, (_label, key, base_key) in zip(bars, STAGES, strict=True):
        count = row[key]
        text = f"{count:,}"
        if base_key is not None:
            base = row[base_key]
            text += f"\n{count / base * 100:.0f}% of {base:,}" if base else "\nnone old enough"
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            bar.get_height() + top * 0.015,
            text,
            ha="center",
            va="bottom",
            fontsize=10,
        )
    drop = row.get("largest_drop")
    if drop_at and drop:
        ax.text(
            0.99,
            0.97,
            f"largest drop: {drop['from']} → {drop['to']}, -{drop['share'] * 100:.0f}%"
            f" ({drop['lost']:,} connections)",
            transform=ax.transAxes,
            ha="right",
            va="top",
            color=HIGHLIGHT,
            fontsize=11,
            fontweight="bold",
        )
    ax.set_ylim(0, top * 1.25)
    ax.set_ylabel("connections")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _funnel_many(ax: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    width = 0.8 / len(STAGES)
    shades = ("#1e3a8a", "#2563eb", "#60a5fa", "#93c5fd", "#bfdbfe")
    top = max((r["installed"] for r in rows), default=0) or 1
    for s, (label, key, _base) in enumerate(STAGES):
        xs = [i + (s - (len(STAGES) - 1) / 2) * width for i in range(len(rows))]
        heights = [r[key] for r in rows]
        colors = [HIGHLIGHT if _drop_stage(r) == label else shades[s] for r in rows]
        ax.bar(xs, heights, width=width * 0.95, color=colors, label=label)
    for i, r in enumerate(rows):
        drop = r.get("largest_drop")
        if drop and drop["lost"]:
            ax.text(
                i,
                r["installed"] + top * 0.02,
                f"-{drop['share'] * 100:.0f}%",
                ha="center",
                va="bottom",
                color=HIGHLIGHT,
                fontsize=10,
                fontweight="bold",
            )
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.get("name") or r["integration"] for r in rows], rotation=35, ha="right")
    from matplotlib.patches import Patch

    ax.set_ylim(0, top * 1.3)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylabel("connections")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    handles = [Patch(color=shades[s], label=label) for s, (label, _, _) in enumerate(STAGES)]
    handles.append(Patch(color=HIGHLIGHT, label="largest drop (share lost above the group)"))
    ax.legend(handles=handles, loc="upper left", ncols=6, frameon=True, framealpha=0.9)


# ---------------------------------------------------------------- health history


def health_plot(
    history: Sequence[Mapping[str, Any]],
    path: Path,
    *,
    title: str,
    bands: Mapping[str, int],
    until: Any = None,
) -> Path:
    """The account's score (``account_health()["history"]``: a point each day it
    changed) on 0-100 as steps held until the next change or ``until`` (a date), the
    band areas shaded and their thresholds drawn, each point in its band's colour."""
    import datetime as dt

    days = [
        p["day"] if isinstance(p["day"], dt.date) else dt.date.fromisoformat(str(p["day"])[:10])
        for p in history
    ]
    scores = [p["score"] for p in history]
    healthy, watch = bands["healthy"], bands["watch"]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=SIZE)
        ax.axhspan(healthy, 100, color=BAND_COLORS["healthy"], alpha=0.08, linewidth=0)
        ax.axhspan(watch, healthy, color=BAND_COLORS["watch"], alpha=0.08, linewidth=0)
        ax.axhspan(0, watch, color=BAND_COLORS["at_risk"], alpha=0.08, linewidth=0)
        for value, band, name in (
            (healthy, "healthy", f"healthy ≥ {healthy}"),
            (watch, "watch", f"watch ≥ {watch}"),
        ):
            ax.axhline(value, color=BAND_COLORS[band], linestyle="--", linewidth=1.2)
            ax.text(
                1.005,
                value,
                name,
                transform=ax.get_yaxis_transform(),
                va="center",
                ha="left",
                color=BAND_COLORS[band],
                fontsize=10,
            )
        ax.text(
            1.005,
            watch / 2,
            "at risk",
            transform=ax.get_yaxis_transform(),
            va="center",
            ha="left",
            color=BAND_COLORS["at_risk"],
            fontsize=10,
        )
        if days:
            held_days, held = list(days), list(scores)
            if until is not None and until > days[-1]:
                held_days.append(until)
                held.append(scores[-1])
            ax.plot(
                held_days, held, drawstyle="steps-post", color="#111827", linewidth=1.8, zorder=3
            )
            ax.scatter(
                days,
                scores,
                c=[BAND_COLORS.get(p["band"], MUTED) for p in history],
                s=22,
                zorder=4,
            )
            last = history[-1]
            ax.annotate(
                f"{last['score']} ({str(last['band']).replace('_', ' ')})",
                (days[-1], scores[-1]),
                textcoords="offset points",
                xytext=(-6, 10),
                ha="right",
                fontsize=11,
                fontweight="bold",
            )
        else:
            ax.text(
                0.5,
                0.5,
                "no score history yet: run `signals score`",
                transform=ax.transAxes,
                ha="center",
                fontsize=12,
                color=MUTED,
            )
        if len(set(days)) == 1:  # one day scored: a dot mid-chart, not an empty axis
            ax.set_xlim(days[0] - dt.timedelta(days=7), days[0] + dt.timedelta(days=7))
        ax.set_ylim(0, 100)
        ax.set_ylabel("integration health score (0-100)")
        ax.set_xlabel("day (UTC)")
        ax.set_title(title, loc="left")
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        fig.subplots_adjust(left=0.08, right=0.88, top=0.92, bottom=0.14)
        return _save(fig, path)


# ---------------------------------------------------------------- impact


def impact_plot(
    rows: Sequence[Mapping[str, Any]], path: Path, *, title: str, unit: str = "pts"
) -> Path:
    """Each integration's lift with its 95% interval (``analyze_all()["integrations"]``)
    in the table's order, top to bottom, coloured by band, against a zero line;
    integrations with too few adopters are listed without a point."""
    rows = list(rows)
    height = max(SIZE[1], 0.32 * len(rows) + 1.8)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(SIZE[0], height))
        ys = list(range(len(rows)))[::-1]
        for y, r in zip(ys, rows, strict=True):
            if r["lift"] is None:
                ax.text(
                    0,
                    y,
                    "too few adopters",
                    ha="center",
                    va="center",
                    color=MUTED,
                    fontsize=10,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
                    zorder=5,
                )
                continue
            color = IMPACT_COLORS.get(r["band"] or "", MUTED)
            lo, hi = r["lift_ci95"]
            if lo is not None and hi is not None:
                ax.plot([lo, hi], [y, y], color=color, linewidth=2.4, solid_capstyle="butt")
                ax.plot([lo, hi], [y, y], linestyle="none", marker="|", markersize=9, color=color)
            ax.plot(
                [r["lift"]],
                [y],
                marker="o",
                markersize=8,
                color=color,
                markerfacecolor=color if not r.get("no_measurable_effect") else "white",
                markeredgewidth=2,
            )
        ax.axvline(0, color="#111827", linewidth=1.2)
        ax.set_yticks(ys)
        ax.set_yticklabels(
            [f"{r['rank']}. {r['integration_name']} (n={r['adopters']})" for r in rows]
        )
        ax.set_ylim(-0.7, len(rows) - 0.3)
        label = "lift: adopters minus matched non-adopters"
        ax.set_xlabel(f"{label} ({unit}), 95% interval" if unit else f"{label}, 95% interval")
        ax.set_title(title, loc="left")
        ax.grid(axis="x", alpha=0.3)
        if all(r["lift"] is None for r in rows):
            ax.set_xlim(-10, 10)  # nothing measured: a readable axis around zero
        used = {r["band"] for r in rows if r["lift"] is not None}
        for band, color in IMPACT_COLORS.items():
            if band in used:
                ax.plot([], [], marker="o", color=color, linewidth=2.4, label=band)
        if any(r.get("no_measurable_effect") for r in rows):
            ax.plot(
                [],
                [],
                marker="o",
                linestyle="none",
                color=MUTED,
                markerfacecolor="white",
                markeredgewidth=2,
                label="interval includes zero",
            )
        if used:
            ax.legend(loc="best", frameon=True, framealpha=0.9)
        fig.tight_layout()
        return _save(fig, path)
