"""The one call each page makes to draw a chart, so the drawing can change without
touching handlers or templates. Drawing itself is `web.svg` (inline SVG, presentation
attributes only — the CSP forbids inline styles — every text escaped)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from integration_signals.web import svg


def history_chart(
    points: Sequence[Mapping[str, Any]],
    *,
    bands: Mapping[str, int] | None = None,
    width: int = 960,
    height: int = 220,
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


# ---------------------------------------------------------------- integration pages

# Which funnel bar a `largest_drop["to"]` names (scoring.funnel vs scoring.views labels).
_DROP_STAGE = {"active": "active now"}


def funnel_chart(
    stages: Sequence[Mapping[str, Any]],
    largest_drop: Mapping[str, Any] | None,
    *,
    width: int = 640,
) -> Markup:
    """Installed -> activated -> active -> retained 30 / 90 days as bars; the stage the
    largest drop leads to is drawn in red, each bar notes its conversion."""
    drop_to = None
    if largest_drop:
        drop_to = _DROP_STAGE.get(largest_drop["to"], largest_drop["to"])
    rows = []
    for s in stages:
        note = None
        if s.get("conversion") is not None:
            note = f"{s['conversion'] * 100:.0f}% of {s['of']:,}"
        elif s.get("of") == 0:
            note = "none old enough yet"
        rows.append(
            {
                "label": s["stage"],
                "value": s["count"],
                "note": note,
                "highlight": s["stage"] == drop_to,
            }
        )
    return Markup(svg.hbars(rows, title="adoption funnel (connections)", width=width))


MIN_COHORT = 5  # smaller install cohorts are noise on the chart (still in the JSON)
MAX_COHORTS = 6


def retention_charts(
    retention: Mapping[str, Any],
    *,
    at_risk_every: int = 30,
    width: int = 960,
) -> dict[str, Any]:
    """Kaplan-Meier retention (``integration_page()["retention"]``): all connections,
    and the newest install cohorts with at least ``MIN_COHORT`` connections, each with
    its 95% band, censoring ticks and the numbers at risk below. Also says which
    cohorts were left off the chart."""
    overall = retention.get("overall") or {}
    cohorts = [c for c in retention.get("cohorts") or [] if c.get("curve")]
    shown = [c for c in cohorts if c["connections"] >= MIN_COHORT][-MAX_COHORTS:]
    hidden = [c["cohort"] for c in cohorts if c not in shown]

    def draw(curves: list[dict[str, Any]], title: str) -> Markup:
        days = [p["day"] for c in curves for p in c["curve"]]
        horizon = max(days, default=0)
        rows = list(range(0, max(at_risk_every * 3, horizon) + 1, at_risk_every))
        lows = [p.get("lower", p["retained"]) for c in curves for p in c["curve"]]
        # Zoom in when every curve and band stays high: 90% vs 95% must be visible.
        floor = math.floor((min(lows, default=0.0) - 0.05) * 10) / 10
        height = 260 + 16 * (len(curves) + 1) + (18 if len(curves) > 1 else 0)
        return Markup(
            svg.step_curves(
                curves,
                at_risk_rows=rows,
                title=title,
                width=width,
                height=height,
                marks=[d for d in (7, 30, 60, 90, 120, 180, 365) if d <= max(horizon, 90)],
                y_min=max(0.0, floor),
            )
        )

    return {
        "overall": draw(
            [{"label": "all", "curve": overall.get("curve") or []}],
            "share of activated connections still active (Kaplan-Meier, 95% band)",
        ),
        "cohorts": draw(
            [{"label": c["cohort"], "curve": c["curve"]} for c in shown],
            f"still active by install {retention.get('cohort_by', 'month')} (95% bands)",
        ),
        "hidden_cohorts": hidden,
    }


def impact_chart(impact: Mapping[str, Any] | None, *, width: int = 640) -> Markup:
    """The lift against the matched group and the naive one (all non-adopters), each
    with its 95% interval around zero, the matched one in its band's colour."""
    if not impact:
        return Markup("")
    unit = "pts" if impact.get("outcome_kind") == "rate" else ""
    matched = impact.get("lift_ci95") or [None, None]
    naive = impact.get("naive_lift_ci95") or [None, None]
    rows = [
        {
            "label": "matched",
            "estimate": impact.get("lift"),
            "lower": matched[0],
            "upper": matched[1],
            "band": impact.get("band"),
        },
        {
            "label": "naive (all)",
            "estimate": impact.get("naive_lift"),
            "lower": naive[0],
            "upper": naive[1],
        },
    ]
    outcome = str(impact.get("outcome") or "outcome")
    return Markup(
        svg.interval_chart(
            rows,
            title=f"adopters minus non-adopters, {outcome} (95% interval)",
            unit=unit,
            width=width,
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
