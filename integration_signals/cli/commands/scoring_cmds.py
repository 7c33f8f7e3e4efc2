"""Commands over scoring: score, health, funnel, retention, ttv."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from integration_signals.cli import filters
from integration_signals.cli.app import app, guarded, runtime
from integration_signals.cli.runtime import UserError, emit, parse_as_of, stderr
from integration_signals.cli.tables import Col, print_table
from integration_signals.store.jsonio import iso

JSON_OPT = typer.Option(False, "--json", help="Print one JSON document on stdout.")
AS_OF_OPT = typer.Option(
    None, "--as-of", help="Score / report as of this UTC day (timestamp or date; default now)."
)
PLOT_OPT = typer.Option(
    None, "--plot", help="Also write the chart as a PNG to this path (the path is said on stderr)."
)
SEGMENT_OPT = typer.Option(
    None, "--segment", help="Only this segment: smb, mid_market, enterprise."
)

COMPONENT_LABELS = {
    "activation_depth": "Activation Depth",
    "usage_volume": "Usage Volume",
    "health_status": "Health Status",
    "frequency": "Frequency",
    "sophistication": "Sophistication",
    "growth": "Growth Trajectory",
}
BAND_STYLE = {"healthy": "green", "watch": "yellow", "at_risk": "red"}
STATE_MARK = {
    "active": "[green]●[/] active",
    "broken": "[red]✖[/] broken",
    "idle": "[yellow]◌[/] idle",
    "installed": "[blue]○[/] installed",
    "uninstalled": "[dim]– uninstalled[/]",
}


def _segment(value: str | None) -> str | None:
    if value is None:
        return None
    from integration_signals.store.accounts import BadAccount, normalize_segment

    try:
        return normalize_segment(value)
    except BadAccount as exc:
        raise typer.BadParameter(str(exc), param_hint="--segment") from None


def _since(value: str | None) -> date | None:
    return None if value is None else parse_as_of(value).date()


# ---------------------------------------------------------------- score


@app.command()
@guarded
def score(
    ctx: typer.Context,
    as_of: str | None = AS_OF_OPT,
    full: bool = typer.Option(False, "--full", help="Rescore every account, not only changed."),
    band: str | None = filters.BAND_OPT,
    segment: str | None = SEGMENT_OPT,
    owner: str | None = typer.Option(
        None, "--owner", help="Only accounts whose CSM or account executive is this person."
    ),
    sort: str | None = typer.Option(
        None,
        "--sort",
        help="Order by score, name, account, segment or band; prefix - for descending"
        " (table default: score, lowest first; --json default: account).",
    ),
    limit: int | None = filters.LIMIT_OPT,
    wide: bool = filters.WIDE_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Score accounts (only what can have changed, unless --full), then list the
    accounts' current scores, lowest first (--band, --segment, --owner narrow it; --json
    too)."""
    from integration_signals.scoring.evaluation import evaluate
    from integration_signals.scoring.replay import latest_evaluation, what_if
    from integration_signals.scoring.run import current_scores

    wanted_band, wanted_segment = filters.band(band), _segment(segment)
    order = filters.sort_key(sort, SCORE_SORTS)
    rt = runtime(ctx)
    when = parse_as_of(as_of)
    latest = latest_evaluation(rt.engine)
    if latest is not None and when < latest:
        # Before the latest evaluation: a read-only what-if. Writing would put the
        # current scores and episodes back in time; `signals replay` rebuilds the past.
        found = what_if(rt.engine, rt.config, as_of=when)
        run_doc: dict[str, Any] = {"what_if": True, "latest_evaluation": latest}
        signals_doc: dict[str, Any] = {
            "as_of": when,
            "open_signals": sum(1 for e in found["episodes"] if e["account_id"] != "*"),
            "episodes": found["episodes"],
        }
        rows = found["accounts"]
    else:
        # The signal rules run in the same pass, at the same clock, over every account:
        # those rescored, those the clock moved past a threshold, and the others are
        # unchanged since the previous run (scoring.evaluation).
        done = evaluate(rt.engine, rt.config, as_of=when, full=full)
        run_doc, signals_doc = done.scoring.as_json(), done.signals.as_json()
        rows = current_scores(rt.engine)
    accounts = [
        row
        for row in rows
        if (wanted_band is None or row["band"] == wanted_band)
        and (wanted_segment is None or row["segment"] == wanted_segment)
        and filters.same_person(owner, row["csm"], row["owner"])
    ]
    if order is None and not as_json:
        order = SCORE_SORTS["score"], False
    if order is not None:
        key, reverse = order
        accounts.sort(key=lambda r: r["account_id"])
        accounts.sort(key=key, reverse=reverse)
    data = {
        "as_of": when,
        "what_if": bool(run_doc.get("what_if")),
        "run": run_doc,
        "signals": signals_doc,
        "accounts": filters.limited(accounts, limit, as_json=as_json),
        "matched": len(accounts),
    }
    emit(data, as_json=as_json, render=lambda d: render_scores(d, wide=wide))


# ---------------------------------------------------------------- replay


def _day(value: str, param: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date; use e.g. 2026-06-01", param_hint=param
        ) from None


def _step(value: str) -> int:
    text = value.strip().lower()
    number = text[:-1] if text.endswith("d") else text
    if not number.isdigit() or int(number) < 1:
        raise typer.BadParameter(f"{value!r} is not a step; use e.g. 1d or 7d", param_hint="--step")
    return int(number)


@app.command()
@guarded
def replay(
    ctx: typer.Context,
    start: str = typer.Option(..., "--from", help="First day to evaluate (UTC date)."),
    end: str | None = typer.Option(
        None, "--to", help="Last day to evaluate, included (default: yesterday, UTC)."
    ),
    step: str = typer.Option("1d", "--step", help="Days between evaluations, e.g. 1d or 7d."),
    as_json: bool = JSON_OPT,
) -> None:
    """Rebuild score history, signal episodes, segments and tasks day by day from the
    stored events, as a live system evaluating at the end of each day would have. The
    range replaces what earlier evaluations wrote from --from on; tasks resolved before
    the end are created closed and never posted; what is still open becomes live work."""
    from datetime import UTC, timedelta
    from datetime import datetime as _dt

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from integration_signals.scoring.replay import replay as run_replay

    first = _day(start, "--from")
    last = _day(end, "--to") if end else _dt.now(UTC).date() - timedelta(days=1)
    if last < first:
        raise UserError(f"--to {last} is before --from {first}; give a range forward in time")
    every = _step(step)
    rt = runtime(ctx)
    total = (last - first).days // every + (1 if (last - first).days % every else 0) + 1
    progress = Progress(
        TextColumn("replay {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    with progress:
        bar = progress.add_task(first.isoformat(), total=total)
        report = run_replay(
            rt.engine,
            rt.config,
            start=first,
            end=last,
            step_days=every,
            progress=lambda day: progress.update(bar, advance=1, description=day.isoformat()),
        )

    def render(d: dict[str, Any]) -> None:
        print(
            f"replayed {d['days']:,} days, {d['from']} to {d['to']}: episodes opened"
            f" {d['episodes']['opened']:,}, resolved {d['episodes']['resolved']:,}; tasks"
            f" live {d['tasks']['live']:,}, closed unseen {d['tasks']['closed']:,}"
            f" ({d['seconds_per_day']:.2f} s per day)"
        )

    emit(report.as_json(), as_json=as_json, render=render)


BAND_ORDER = {"at_risk": 0, "watch": 1, "healthy": 2}
SCORE_SORTS: dict[str, Any] = {
    "score": lambda r: r["score"],
    "name": lambda r: (r["name"] or r["account_id"]).lower(),
    "account": lambda r: r["account_id"],
    "segment": lambda r: r["segment"] or "",
    "band": lambda r: BAND_ORDER.get(r["band"], 3),
}
SCORE_COLUMNS = (
    Col("account", priority=2),
    Col("name"),
    Col("segment", priority=3),
    Col("score", justify="right"),
    Col("band"),
    Col("stage", priority=4),
    Col("top reason", priority=1, flex=True, min_width=16),
)


def render_scores(d: dict[str, Any], *, wide: bool = False, console: Console | None = None) -> None:
    """The score table: one line per account, columns dropped or cut to fit."""
    run = d["run"]
    console = console or Console()
    rows = []
    for row in d["accounts"]:
        style = BAND_STYLE.get(row["band"], "")
        rows.append(
            [
                Text(row["account_id"]),
                Text(row["name"] or ""),
                Text(row["segment"] or ""),
                Text(str(row["score"])),
                Text(row["band"], style=style),
                Text(row["stage"]),
                Text(row["reason"] or ""),
            ]
        )
    print_table(
        SCORE_COLUMNS,
        rows,
        wide=wide,
        console=console,
        title=(
            f"integration health as of {iso(d['as_of'])}: what-if, nothing written (the"
            f" latest evaluation is {iso(run['latest_evaluation'])}; rebuild the past with"
            " `signals replay`)"
            if run.get("what_if")
            else f"integration health as of {iso(d['as_of'])}: {run['rescored']:,} rescored, "
            f"{run['changed']:,} changed, {run['accounts']:,} accounts ({run['seconds']}s)"
        ),
    )
    more = filters.more_line(len(d["accounts"]), d.get("matched", len(d["accounts"])), "accounts")
    if more:
        console.print(more, highlight=False)
    if run.get("what_if"):
        console.print(f"signals: {d['signals']['open_signals']} open then", highlight=False)
    elif "signals" in d:
        sig = d["signals"]
        console.print(
            f"signals: {len(sig['fired'])} fired, {len(sig['resolved'])} resolved,"
            f" {sig['open_signals']} open; {sig['tasks_created']} tasks created"
            + (
                " — event feed stale: risk signals and CRM writes on hold"
                if sig["feed_stale"]
                else ""
            ),
            highlight=False,
        )


# ---------------------------------------------------------------- health


def resolve_one(engine: Any, text: str) -> str:
    """An ACCOUNT argument resolved like the Slack bot: id, exact name, domain, fuzzy."""
    from integration_signals.store.accounts import resolve_account

    found = resolve_account(engine, text)
    if found.account is not None:
        return found.account.account_id
    if found.accounts:
        for acc in found.accounts:
            stderr.print(f"  {acc.account_id}  {acc.name or ''}  {acc.domain or ''}")
        names = ", ".join(f"{a.name} ({a.account_id})" for a in found.accounts)
        raise UserError(
            f"{len(found.accounts)} accounts match {text!r}: {names}; give the account id"
        )
    nearest = ", ".join(found.suggestions) or "none"
    raise UserError(f"no account matches {text!r}; nearest: {nearest}")


@app.command()
@guarded
def health(
    ctx: typer.Context,
    account: str = typer.Argument(..., help="Account id, exact name, domain or a fuzzy name."),
    as_of: str | None = AS_OF_OPT,
    plot: Path | None = PLOT_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """One account's integration health card: score, components, integrations
    (--plot: its score history with the band thresholds)."""
    from integration_signals.scoring.health import account_health

    rt = runtime(ctx)
    account_id = resolve_one(rt.engine, account)
    data = account_health(rt.engine, rt.config, account_id, as_of=parse_as_of(as_of))
    if plot is not None:
        from integration_signals.cli import plots
        from integration_signals.cli.plots import health_plot
        from integration_signals.scoring.components import rules_for

        bands = rules_for(rt.config.scoring, data["segment"]).bands
        data["plot"] = plots.wrote_chart(
            health_plot(
                data["history"],
                plot,
                title=f"{data['name'] or account_id}: integration health score by day"
                f" (as of {iso(data['as_of'])[:10]})",
                bands={"healthy": bands.healthy, "watch": bands.watch},
                until=data["as_of"].date(),
            )
        )
    emit(data, as_json=as_json, render=render_health)


def _fmt_count(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1000:
        return f"{value / 1000:.1f}K"
    return f"{value:.0f}"


def _ago(when: datetime | None, as_of: datetime) -> str:
    if when is None:
        return "never"
    hours = (as_of - when).total_seconds() / 3600
    if hours < 1:
        return "<1h ago"
    if hours < 48:
        return f"{hours:.0f}h ago"
    return f"{hours / 24:.0f}d ago"


def render_health(d: dict[str, Any], console: Console | None = None) -> None:
    """The seeds' dashboard card in the terminal."""
    console = console or Console()
    mrr = f"${d['mrr']:,.0f}" if d["mrr"] is not None else "n/a"
    console.print(
        f"[bold]Customer: {d['name'] or d['account_id']}[/] | Plan: {(d['plan'] or 'n/a').title()}"
        f" | Segment: {d['segment'] or 'n/a'} | MRR: {mrr}",
        markup=True,
        highlight=False,
    )
    console.print("━" * 72)
    live = [i for i in d["integrations"] if i["state"] != "uninstalled"]
    table = Table(
        title=f"INTEGRATIONS ({d['active_integrations']} active)",
        title_justify="left",
        show_edge=True,
    )
    for col in ("integration", "state", "success 7d", "volume/day", "last good sync"):
        table.add_column(col)
    for i in live:
        rate = i["success_rate_7d"]
        table.add_row(
            i["name"],
            STATE_MARK.get(i["state"], i["state"]),
            "–" if rate is None else f"{rate * 100:.0f}%",
            _fmt_count(i["records_per_day"]),
            _ago(i["last_success_at"], d["as_of"]),
        )
    console.print(table)
    console.print("[bold]HEALTH SIGNALS[/]")
    pct = d.get("percentiles") or {}
    for name, label in COMPONENT_LABELS.items():
        comp = d["components"][name]
        peer = f" p{pct[name]}" if name in pct else ""
        console.print(
            f"  {label + ':':<20}{comp['score']:>3}/100  [dim]w{comp['weight']:g}{peer}[/]"
            f"  ({comp['reason']})",
            highlight=False,
        )
    style = BAND_STYLE.get(d["band"], "")
    trend = d["trend_30d"]
    trend_text = "" if trend is None else f"  ({trend:+d} vs 30 days ago)"
    stage = "  [cyan]onboarding[/]" if d["stage"] == "onboarding" else ""
    console.print(
        f"\n[bold]OVERALL INTEGRATION SCORE: {d['score']}/100 "
        f"[{style}]{d['band'].replace('_', ' ').title()}[/][/]{trend_text}{stage}",
        highlight=False,
    )
    if d["stage"] == "onboarding" and d.get("onboarding"):
        console.print(f"  {d['onboarding']['reason']}", highlight=False)
    if d["segments"]:
        console.print(f"segments: {', '.join(d['segments'])}")
    if d["signals"]:
        console.print("[bold]OPEN SIGNALS[/]")
        for s in d["signals"]:
            console.print(f"  {s['kind']} {s['subject'] or ''} since {iso(s['fired_at'])}")
    if d["tasks"]:
        console.print("[bold]OPEN TASKS[/]")
        for t in d["tasks"]:
            console.print(f"  #{t['id']} {t['title']} ({t['status']}, owner {t['owner']})")
    crm = d["crm"]
    if crm["salesforce_id"] or crm["hubspot_id"]:
        console.print(
            f"[dim]Salesforce {crm['salesforce_id'] or '–'} · HubSpot {crm['hubspot_id'] or '–'}[/]"
        )


# ---------------------------------------------------------------- funnel, retention, ttv


def _check_integration(rt: Any, key: str | None) -> str | None:
    if key is None:
        return None
    from sqlalchemy import select

    from integration_signals.store.models import Integration

    key = key.strip().lower()
    with rt.engine.connect() as conn:
        known = set(conn.execute(select(Integration.__table__.c.key)).scalars())
    known |= set(rt.config.integrations)
    if key not in known:
        raise UserError(f"unknown integration {key!r}; known: {', '.join(sorted(known))}")
    return key


@app.command()
@guarded
def funnel(
    ctx: typer.Context,
    integration: str | None = typer.Option(None, "--integration", help="Only this integration."),
    segment: str | None = SEGMENT_OPT,
    since: str | None = typer.Option(None, "--since", help="Only connections started since."),
    as_of: str | None = AS_OF_OPT,
    plot: Path | None = PLOT_OPT,
    wide: bool = filters.WIDE_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Adoption funnel per integration: installed -> activated -> active -> retained
    (--plot: the stages as bars, the largest drop in red)."""
    from integration_signals.scoring.funnel import funnel_rows
    from integration_signals.scoring.retention import load_lifetimes

    rt = runtime(ctx)
    when = parse_as_of(as_of)
    key = _check_integration(rt, integration)
    lifetimes, conns, _seg = load_lifetimes(
        rt.engine,
        rt.config,
        as_of=when.date(),
        integration=key,
        segment=_segment(segment),
        since=_since(since),
    )
    data = {
        "as_of": when,
        "segment": _segment(segment),
        "since": _since(since),
        "integrations": funnel_rows(conns, lifetimes),
    }
    if plot is not None:
        from integration_signals.cli import plots
        from integration_signals.cli.plots import funnel_plot

        rows = data["integrations"]
        what = rows[0]["name"] if key and rows else "per integration"
        scope = "".join(
            f", {label} {value}"
            for label, value in (("segment", data["segment"]), ("since", data["since"]))
            if value
        )
        data["plot"] = plots.wrote_chart(
            funnel_plot(
                rows,
                plot,
                title=f"adoption funnel {what} (connections, as of {when.date()}{scope})",
            )
        )
    emit(data, as_json=as_json, render=lambda d: render_funnel(d, wide=wide))


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


FUNNEL_COLUMNS = (
    Col("integration"),
    Col("installed", justify="right"),
    Col("activated", justify="right"),
    Col("active", justify="right"),
    Col("broken", priority=3, justify="right"),
    Col("idle", priority=4, justify="right"),
    Col("uninstalled", priority=5, justify="right"),
    Col("retained 30d", priority=2, justify="right"),
    Col("retained 90d", priority=2, justify="right"),
    Col("largest drop", priority=1),
)
# The stage a drop leads to, in the few words a table cell has room for.
DROP_TO = {"retained 30 days": "retained 30d", "retained 90 days": "retained 90d"}


def render_funnel(d: dict[str, Any], *, wide: bool = False, console: Console | None = None) -> None:
    """The funnel table: one line per integration (display names), fitted to the
    terminal; --wide spells the largest drop out in full."""
    title = f"adoption funnel as of {iso(d['as_of'])}"
    if d["segment"]:
        title += f" ({d['segment']})"
    rows = []
    for r in d["integrations"]:
        drop = r["largest_drop"]
        if drop is None or drop["lost"] == 0:
            drop_text = "–"
        elif wide:
            drop_text = f"{drop['from']} → {drop['to']}: -{drop['share'] * 100:.0f}%"
        else:
            drop_text = f"-{drop['share'] * 100:.0f}% → {DROP_TO.get(drop['to'], drop['to'])}"
        rows.append(
            [
                r["name"],
                str(r["installed"]),
                f"{r['activated']} ({_rate(r['activation_rate'])})",
                f"{r['active']} ({_rate(r['active_rate'])})",
                str(r["broken"]),
                str(r["idle"]),
                str(r["uninstalled"]),
                f"{r['retained_30']}/{r['eligible_30']}",
                f"{r['retained_90']}/{r['eligible_90']}",
                drop_text,
            ]
        )
    print_table(
        FUNNEL_COLUMNS,
        [[Text(c) for c in row] for row in rows],
        wide=wide,
        title=title,
        console=console,
    )


@app.command()
@guarded
def retention(
    ctx: typer.Context,
    integration: str = typer.Option(..., "--integration", help="The integration key."),
    cohort: str | None = typer.Option(None, "--cohort", help="Split by install week or month."),
    segment: str | None = SEGMENT_OPT,
    plot: Path | None = typer.Option(None, "--plot", help="Write the curve(s) as a PNG."),
    as_of: str | None = AS_OF_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Kaplan-Meier retention: share of connections still active d days after activation."""
    from integration_signals.scoring.retention import load_lifetimes, retention_report

    if cohort not in (None, "week", "month"):
        raise typer.BadParameter("use week or month", param_hint="--cohort")
    rt = runtime(ctx)
    when = parse_as_of(as_of)
    key = _check_integration(rt, integration)
    assert key is not None
    lifetimes, _conns, _seg = load_lifetimes(
        rt.engine, rt.config, as_of=when.date(), integration=key, segment=_segment(segment)
    )
    data = retention_report(lifetimes, integration=key, cohort=cohort)
    name = rt.config.integrations[key].name if key in rt.config.integrations else key
    data = {"as_of": when, "segment": _segment(segment), **data, "name": name}
    if plot is not None:
        from integration_signals.cli import plots

        data["plot"] = plots.wrote_chart(_retention_plot(data, plot, cohort=cohort, when=when))
    emit(data, as_json=as_json, render=_render_retention)


MIN_COHORT = 5  # smaller install cohorts are noise on the chart (still in the JSON)
MAX_COHORTS = 6  # the newest ones; more curves and bands cannot be told apart


def _with_band(curve: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from integration_signals.scoring.retention import KMPoint
    from integration_signals.scoring.views import band_of

    return band_of([KMPoint(**p) for p in curve])


def _retention_plot(data: dict[str, Any], path: Path, *, cohort: str | None, when: Any) -> Path:
    """The PNG: the curve with its 95% band, or the newest install cohorts with at
    least ``MIN_COHORT`` connections (the others named on stderr)."""
    from integration_signals.cli.plots import retention_plot

    name = data["name"]
    if cohort:
        cohorts = [c for c in data["cohorts"] if c["curve"]]
        shown = [c for c in cohorts if c["connections"] >= MIN_COHORT][-MAX_COHORTS:]
        hidden = [c["cohort"] for c in cohorts if c not in shown]
        if hidden:
            stderr.print(
                f"not drawn (fewer than {MIN_COHORT} connections, or older than the newest"
                f" {MAX_COHORTS}): {', '.join(hidden)}",
                markup=False,
                soft_wrap=True,
            )
        series = [
            {
                "label": f"installed {c['cohort']}",
                "short": c["cohort"],
                "connections": c["connections"],
                "curve": _with_band(c["curve"]),
            }
            for c in shown
        ]
        title = f"{name}: still active by install {cohort} (Kaplan-Meier, 95% bands)"
    else:
        series = [
            {"label": name, "connections": data["connections"], "curve": _with_band(data["curve"])}
        ]
        title = f"{name}: connections still active after activation (Kaplan-Meier, 95% band)"
    segment = f", {data['segment']}" if data.get("segment") else ""
    return retention_plot(series, path, title=f"{title}\nas of {when.date().isoformat()}{segment}")


def _render_retention(d: dict[str, Any]) -> None:
    ra = d["retained_at"]
    print(
        f"{d.get('name') or d['integration']}: {d['connections']} activated connections "
        f"({d['ended']} ended, {d['censored']} still active) as of {iso(d['as_of'])}"
    )
    print("  retained at " + ", ".join(f"day {k}: {_rate(v)}" for k, v in ra.items()))
    if d["median_days"] is not None:
        print(f"  median lifetime {d['median_days']} days")
    for c in d.get("cohorts", []):
        cra = c["retained_at"]
        print(
            f"  cohort {c['cohort']}: n={c['connections']}  "
            + ", ".join(f"d{k} {_rate(v)}" for k, v in cra.items())
        )


@app.command()
@guarded
def ttv(
    ctx: typer.Context,
    integration: str | None = typer.Option(None, "--integration", help="Only this integration."),
    segment: str | None = SEGMENT_OPT,
    as_of: str | None = AS_OF_OPT,
    wide: bool = filters.WIDE_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Time to value: days from install to first successful sync (median, p90)."""
    from integration_signals.scoring.retention import load_lifetimes, ttv_rows

    rt = runtime(ctx)
    when = parse_as_of(as_of)
    key = _check_integration(rt, integration)
    _lifetimes, conns, _seg = load_lifetimes(
        rt.engine, rt.config, as_of=when.date(), integration=key, segment=_segment(segment)
    )
    data = {
        "as_of": when,
        "segment": _segment(segment),
        "integrations": ttv_rows(conns, when.date()),
    }

    def render(d: dict[str, Any]) -> None:
        cols = (
            Col("integration"),
            Col("installs", justify="right"),
            Col("activated", justify="right"),
            Col("not yet", priority=2, justify="right"),
            Col("median days", justify="right"),
            Col("p90 days", priority=1, justify="right"),
        )
        rows = [
            [
                r.get("name") or r["integration"],
                str(r["installs"]),
                str(r["activated"]),
                str(r["censored"]),
                "–" if r["median_days"] is None else str(r["median_days"]),
                "–" if r["p90_days"] is None else str(r["p90_days"]),
            ]
            for r in d["integrations"]
        ]
        print_table(
            cols,
            [[Text(c) for c in row] for row in rows],
            wide=wide,
            title=f"time to value (install → first successful sync) as of {iso(d['as_of'])}",
        )

    emit(data, as_json=as_json, render=render)
