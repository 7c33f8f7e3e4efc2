"""Commands over impact: `impact` (matched comparison), `backtest` (did the score
predict churn?) and `model train|report` (the outcome model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from integration_signals.cli.app import app, guarded, runtime
from integration_signals.cli.runtime import UserError, emit, fail, parse_as_of

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
    plot: Path | None = typer.Option(
        None,
        "--plot",
        help="With --all: also write each lift and its 95% interval as a PNG to this path.",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Does adopting INTEGRATION change OUTCOME, against matched non-adopters?

    Each analysis is also kept (one per integration and outcome) for the dashboard's
    integration pages. --all shows its progress on stderr, one step per integration."""
    from integration_signals.cli.progress import Steps
    from integration_signals.scoring.impact import (
        ImpactError,
        ImpactRequest,
        analyze,
        analyze_all,
        default_as_of,
        integration_keys,
    )
    from integration_signals.scoring.impact_cache import store_impact
    from integration_signals.store.sql import utcnow

    if all_ == (integration is not None):
        fail("give one INTEGRATION or --all, not both and not neither", code=2)
    if plot is not None and not all_:
        fail("--plot draws every integration's lift: use it with --all", code=2)
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
    reports: list[dict[str, Any]] = []
    try:
        if all_:
            total = len(integration_keys(rt.engine, rt.config))
            with Steps("impact", total) as steps:
                steps.running("matching adopters of the first integration")

                def each(report: dict[str, Any]) -> None:
                    reports.append(report)
                    steps.done(report["integration_name"])

                data = analyze_all(rt.engine, rt.config, req, each=each)
        else:
            data = analyze(rt.engine, rt.config, req)
            reports.append(data)
    except ImpactError as exc:
        raise UserError(str(exc)) from None
    store_impact(rt.engine, reports, now=utcnow())
    if plot is not None:
        data["plot"] = _impact_plot(data, reports, plot)
    emit(data, as_json=as_json, render=_render_all if all_ else _render_one)


def _impact_plot(data: dict[str, Any], reports: list[dict[str, Any]], path: Path) -> str:
    from integration_signals.cli.plots import impact_plot, wrote_chart

    rate = any(r.get("outcome_kind") == "rate" for r in reports)
    return wrote_chart(
        impact_plot(
            data["integrations"],
            path,
            title=f"impact of each integration on {data['outcome']} ({data['ranked_by']}),"
            f" adoption up to {str(data['as_of'])[:10]}",
            unit="pts" if rate else "",
        )
    )


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
    # flag_meaning already starts with the flag's words: print it, do not repeat them.
    console.print(d["flag_meaning"])
    console.print(f"[dim]{d['multiple_comparisons']} {d['caveat']}[/]")


def _horizon(value: str | None, default: int) -> int:
    """``90d``, ``12w`` or ``90`` (days)."""
    if value is None:
        return default
    text = value.strip().lower()
    factor = 7 if text.endswith("w") else 1
    try:
        days = int(text.rstrip("dw")) * factor
    except ValueError:
        days = 0
    if days <= 0:
        fail(f"--horizon {value!r} is not a duration; use e.g. 90d or 12w", code=2)
    return days


@app.command()
@guarded
def backtest(
    ctx: typer.Context,
    as_of: str = typer.Option(..., "--as-of", help="Score as of this past moment (T)."),
    horizon: str | None = typer.Option(
        None, "--horizon", help="Churn window after T, e.g. 90d (default impact.horizon_days)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Score every account as of T with only what was known then; did band and score
    predict churn within the horizon? (Writes nothing.)"""
    from integration_signals.scoring.backtest import backtest as run_backtest
    from integration_signals.store.sql import utcnow

    rt = runtime(ctx)
    days = _horizon(horizon, rt.config.impact.horizon_days)
    data = run_backtest(
        rt.engine, rt.config, as_of=parse_as_of(as_of), horizon_days=days, now=utcnow()
    )
    emit(data, as_json=as_json, render=_render_backtest)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.1f}%"


def _render_backtest(d: dict[str, Any]) -> None:
    console = Console(highlight=False)
    window = f"{str(d['outcome_window'][0])[:10]} .. {str(d['outcome_window'][1])[:10]}"
    console.print(
        f"[bold]Backtest[/]: scored {d['accounts']} accounts as of {d['as_of_day']} "
        f"(config {d['config_version']}); churn in {window}"
        + ("" if d["complete"] else " [yellow](window not over yet)[/]")
    )
    table = Table(title_justify="left")
    for col in ("band", "accounts", "churned", "churn rate", "lost (churn or non-renewal)"):
        table.add_column(col)
    for b in d["bands"]:
        table.add_row(
            b["band"],
            str(b["accounts"]),
            str(b["churned"]),
            _pct(b["churn_rate"]),
            _pct(b["loss_rate"]),
        )
    console.print(table)
    auc = "n/a" if d["auc"] is None else f"{d['auc']:.3f}"
    console.print(f"  AUC (score vs churn) {auc}; {d['reading']}")


model_app = typer.Typer(help="The outcome model: churn/renewal probability.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("train")
@guarded
def model_train(
    ctx: typer.Context,
    horizon: str | None = typer.Option(None, "--horizon", help="Churn window, e.g. 90d."),
    as_of: str | None = typer.Option(None, "--as-of", help="Train as of this moment (now)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Train on older snapshots, validate on the newest (time split), store the model."""
    from integration_signals.scoring.model import ModelError, train

    rt = runtime(ctx)
    days = _horizon(horizon, rt.config.impact.horizon_days)
    try:
        data = train(rt.engine, rt.config, now=parse_as_of(as_of), horizon_days=days)
    except ModelError as exc:
        raise UserError(str(exc)) from None
    emit(data, as_json=as_json, render=_render_model)


@model_app.command("report")
@guarded
def model_report(
    ctx: typer.Context,
    top: int = typer.Option(10, "--top", help="How many at-risk accounts to list."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Rate current customers as of this moment (now)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """The stored model's validation, top features, integration pairs, riskiest accounts."""
    from integration_signals.scoring.model import ModelError, report

    rt = runtime(ctx)
    try:
        data = report(rt.engine, rt.config, now=parse_as_of(as_of), top=top)
    except ModelError as exc:
        raise UserError(str(exc)) from None
    emit(data, as_json=as_json, render=_render_model)


def _render_model(d: dict[str, Any]) -> None:
    console = Console(highlight=False)
    console.print(
        f"[bold]Outcome model[/] (churn within {d['horizon_days']} days): trained on "
        f"{d['train_rows']} rows from {', '.join(d['train_snapshots'])}, validated on "
        f"{d['test_rows']} accounts of {d['test_snapshot']}"
    )
    console.print(
        f"  AUC {d['auc']:.3f}  Brier {d['brier']:.4f} (always-the-base-rate "
        f"{d['brier_baseline']:.4f})"
    )
    console.print(
        "  calibration (predicted -> observed): "
        + ", ".join(f"{_pct(c['predicted'])}->{_pct(c['observed'])}" for c in d["calibration"])
    )
    console.print(
        "  top features: "
        + "; ".join(f"{f['feature']} ({f['effect']})" for f in d["top_features"][:6])
    )
    if d["pairs"]:
        table = Table(title="integration pairs and retention", title_justify="left")
        for col in ("pair", "accounts", "retention", "vs all", "lift"):
            table.add_column(col)
        for p in d["pairs"][:8]:
            table.add_row(
                " + ".join(p["pair"]),
                str(p["support"]),
                _pct(p["retention"]),
                _pct(p["baseline_retention"]),
                f"{p['lift']:.2f}x",
            )
        console.print(table)
    if d.get("highest_churn_probability"):
        console.print(
            "  most likely to churn now: "
            + ", ".join(
                f"{r['account_id']} {_pct(r['churn_probability'])}"
                for r in d["highest_churn_probability"]
            )
        )
