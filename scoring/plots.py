"""PNG charts (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

MARKS = (7, 30, 60, 90)


def retention_plot(
    series: Sequence[tuple[str, list[dict[str, Any]], int]], path: Path, *, title: str
) -> Path:
    """Kaplan-Meier step curves, one per (label, curve, connections), with the 7/30/60/90
    day marks, written as a PNG to ``path``."""
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    horizon = 0
    for label, curve, n in series:
        if not curve:
            continue
        days = [p["day"] for p in curve]
        retained = [p["retained"] for p in curve]
        horizon = max(horizon, days[-1])
        ax.step(days, retained, where="post", linewidth=2, label=f"{label} (n={n})")
    for mark in MARKS:
        if mark <= max(horizon, 90):
            ax.axvline(mark, color="#bbbbbb", linewidth=0.8, linestyle="--", zorder=0)
            ax.text(mark, 1.02, f"day {mark}", ha="center", fontsize=8, color="#666666")
    ax.set_ylim(0, 1.06)
    ax.set_xlim(left=0)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("days since activation (first successful sync)")
    ax.set_ylabel("connections still active")
    ax.set_title(title, pad=18)
    ax.grid(axis="y", alpha=0.3)
    if series:
        ax.legend(loc="lower left", fontsize=8, frameon=False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
