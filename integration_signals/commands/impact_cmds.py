"""Commands over impact: `impact` (matched comparison), `backtest` (did the score
predict churn?) and `model train|report` (the outcome model)."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from integration_signals.cli import app, guarded, runtime
from integration_signals.runtime import UserError, emit, fail, parse_as_of

JSON_OPT = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:+.1f}{unit}"


def _ci(ci: list[float | None]) -> str:
    if ci[0] is None or ci[1] is None:
        return "n/a"
    return f"[{ci[0]:+.1f}, {ci[1]:+.1f}]"


@app.command()
@guarded
def impact(
    ctx: typer.Context,
    integration: str | None = typer.Argument(None, help="Integration key, e.g. snowflake."),
    outcome: str = typer.Option(
        ..., "--outcome", help="renewed, churned, expansion_mrr, or a numeric/boolean trait."
    ),
    all_: bool = typer.Option(False, "--all", help="Every integration, ranked by lift."),
    exact: str | None = typer.Option(
        None, "--exact", help="Covariates matched exactly, comma-separated ('' for none)."
    ),
    near: str | None = typer.Option(
        None, "--near", help="Numeric covariates matched by nearest neighbour ('' for none)."
    ),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Adoption measured up to here, outcomes after (default: now minus "
        "impact.outcome_window_days).",
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Bootstrap seed (same seed, same result)."
    ),
    caliper: float | None = typer.Option(
        None, "--caliper", help="Largest match distance in standard deviations (0 = none)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Does adopting INTEGRATION change OUTCOME, against matched non-adopters?"""
    from scoring.impact import ImpactError, ImpactRequest, analyze, analyze_all, default_as_of
    from store.sql import utcnow

    if all_ == (integration is not None):
        fail("give one INTEGRATION or --all, not both and not neither", code=2)
    rt = runtime(ctx)
    cfg = rt.config.impact
    moment = parse_as_of(as_of) if as_of else default_as_of(cfg, utcnow())
    req = ImpactRequest.from_config(
        cfg,
        (integration or "").strip().lower(),
        outcome.strip(),
        as_of=moment,
        exact=_names(exact),
        near=_names(near),
        seed=seed,
        caliper=caliper,
    )
    try:
        if all_:
            emit(analyze_all(rt.engine, rt.config, req), as_json=as_json, render=_render_all)
        else:
            emit(analyze(rt.engine, rt.config, req), as_json=as_json, render=_render_one)
    except ImpactError as exc:
        raise UserError(str(exc)) from None


def _render_one(d: dict[str, Any]) -> None:
    console = Console(highlight=False)
    rate = d["outcome_kind"] == "rate"
    unit = " pts" if rate else ""

    def mean(v: float | None) -> str:
        if v is None:
            return "n/a"
        return f"{v * 100:.1f}%" if rate else f"{v:,.2f}"

    console.print(
        f"[bold]{d['integration_name']}[/] and {d['outcome']} "
        f"(adoption up to {str(d['as_of'])[:10]}, outcome after)"
    )
    console.print(
        f"  adopters {d['adopters']}  matched {d['matched_adopters']} to {d['controls']} "
        f"controls  unmatched adopters dropped {d['unmatched_adopters']}  "
        f"installed but not adopted {d['installed_not_adopted']}"
    )
    console.print(
        f"  adopters {mean(d['adopter_mean'])}  matched controls {mean(d['control_mean'])}"
    )
    console.print(
        f"  [bold]lift {_fmt(d['lift'], unit)}[/]  95% CI {_ci(d['lift_ci95'])}   "
        f"naive (vs all non-adopters) {_fmt(d['naive_lift'], unit)} "
        f"{_ci(d['naive_lift_ci95'])}"
    )
    console.print(f"  band [bold]{d['band'] or 'n/a'}[/]: {d['verdict']}")
    table = Table(title="covariate balance (standardised mean difference)", title_justify="left")
    for col in ("covariate", "before", "after"):
        table.add_column(col)
    for b in d["balance"]:
        label = b["covariate"] + (f" = {b['level']}" if "level" in b else "")
        table.add_row(label, f"{b['smd_before']:+.3f}", f"{b['smd_after']:+.3f}")
    console.print(table)
    console.print(f"[dim]{d['caveat']}[/]")


def _render_all(d: dict[str, Any]) -> None:
    console = Console(highlight=False)
    table = Table(title=f"impact on {d['outcome']} ({d['ranked_by']})", title_justify="left")
    for col in ("#", "integration", "adopters", "lift", "95% CI", "naive", "band", ""):
        table.add_column(col)
    for r in d["integrations"]:
        table.add_row(
            str(r["rank"]),
            r["integration_name"],
            str(r["adopters"]),
            _fmt(r["lift"]),
            _ci(r["lift_ci95"]),
            _fmt(r["naive_lift"]),
            r["band"] or "n/a",
            "no measurable effect"
            if r["no_measurable_effect"]
            else ("" if r["lift"] is not None else "too few adopters"),
        )
    console.print(table)
    console.print(f"no measurable effect = {d['flag_meaning']}")
    console.print(f"[dim]{d['multiple_comparisons']} {d['caveat']}[/]")
