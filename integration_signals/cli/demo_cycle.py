"""`signals demo`: build the demo data set through the normal ingest path, then run one
cycle on it. Composes every layer, so it lives in the entry package."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select

from integration_signals.cli.progress import Steps
from integration_signals.cli.runtime import Runtime, UserError
from integration_signals.config import Config
from integration_signals.store import models
from integration_signals.store.accounts import import_account_objects
from integration_signals.store.demo import generate
from integration_signals.store.ingest import Ingestor, read_objects
from integration_signals.store.sql import utcnow

# Every table the demo may fill; cleared before a rebuild.
_TABLES = [
    models.TaskEvent,
    models.Task,
    models.Signal,
    models.ScoreHistory,
    models.AccountScore,
    models.ScoringRun,
    models.SyncLedger,
    models.SyncMatch,
    models.SyncRun,
    models.DailyUsage,
    models.Connection,
    models.Event,
    models.Quarantine,
    models.Account,
    models.Integration,
    models.KeyValue,
]


@dataclass
class DemoResult:
    data: dict[str, Any]
    render: Callable[[dict[str, Any]], None]


def _reset(engine: Engine) -> None:
    """Clear the database for a fresh demo, unless it holds data that is not the demo's."""
    t = models.Event.__table__
    with engine.begin() as conn:
        foreign = conn.execute(
            select(func.count()).select_from(t).where(t.c.source != "demo")
        ).scalar_one()
        if foreign:
            raise UserError(
                f"the database holds {foreign:,} events that are not demo data; point "
                "SIGNALS_DATABASE_URL at another file (e.g. sqlite:///demo.db) to run the demo"
            )
        for model in _TABLES:
            conn.execute(delete(model.__table__))


# The demo's steps, in order, as the progress bar counts them.
DEMO_STEPS = 10


def build_demo_data(
    rt: Runtime, *, accounts: int, seed: int, end: datetime, steps: Steps | None = None
) -> dict[str, Any]:
    """Generate the data set and load it through the normal import and ingest paths
    (four steps of ``steps``)."""
    steps = steps or Steps("demo", 4)
    started = time.perf_counter()
    with steps.step(f"generate {accounts:,} accounts, 180 days of events"):
        data = generate(seed, accounts, end=end)
    with steps.step("clear the old demo data"):
        _reset(rt.engine)
    with steps.step(f"import {len(data.accounts):,} accounts"):
        imported = import_account_objects(rt.engine, data.accounts, source="demo", now=end)
    with steps.step(f"ingest {len(data.events):,} events"):
        ingestor = Ingestor(rt.engine, rt.config, now=end)
        report = ingestor.ingest(read_objects(data.events), source="demo")
    return {
        "as_of": end,
        "accounts": imported.imported,
        "events": report.as_json(),
        "patterns": dict(sorted(data.patterns.items())),
        "seconds": round(time.perf_counter() - started, 2),
    }


def run_demo(rt: Runtime, *, accounts: int, seed: int, as_json: bool) -> DemoResult:
    """Build the data set, then one cycle on it; each step's progress on stderr."""
    end = utcnow()
    with Steps("demo", DEMO_STEPS) as steps:
        summary = build_demo_data(rt, accounts=accounts, seed=seed, end=end, steps=steps)
        with rt.engine.connect() as conn:
            summary["integrations"] = conn.execute(
                select(func.count()).select_from(models.Integration.__table__)
            ).scalar_one()
            summary["connections"] = conn.execute(
                select(func.count()).select_from(models.Connection.__table__)
            ).scalar_one()
            summary["segments"] = dict(
                conn.execute(
                    select(models.Account.segment, func.count()).group_by(models.Account.segment)
                ).all()
            )
        summary["database"] = rt.engine.url.render_as_string(hide_password=True)
        with steps.step("score every account and evaluate the signal rules (one pass)"):
            signals = _score_step(rt, summary, end)
        with steps.step("summarise the signals and Acme's health card"):
            summary["signals"] = demo_signals(rt, as_of=end, report=signals)
            summary["acme"] = _acme_card(rt, end)
        with steps.step("preview the CRM syncs (dry run)"):
            summary["crm"] = crm_preview(rt, now=end)
        with steps.step(f"impact on churn of {', '.join(IMPACT_DEMO)}"):
            _impact_step(rt, summary, end)
        with steps.step("answer /integration-health acme"):
            summary["slack"] = demo_slack(rt, as_of=end)
        with steps.step("create the dashboard's demo user"):
            summary["dashboard"] = demo_dashboard(rt, now=end)
    return DemoResult(summary, _render)


DEMO_USER = "demo@example.com"


def demo_dashboard(rt: Runtime, *, now: datetime) -> dict[str, Any]:
    """A demo admin for the web dashboard with a fresh generated password (a rerun of
    the demo replaces it), and where to open the dashboard."""
    import secrets

    from integration_signals.web.auth import add_user

    password = secrets.token_urlsafe(12)
    add_user(rt.engine, DEMO_USER, role="admin", password=password, now=now, replace=True)
    serve = rt.config.serve
    host = "127.0.0.1" if serve.host in ("0.0.0.0", "::") else serve.host
    return {
        "command": "signals serve",
        "url": f"http://{host}:{serve.port}/accounts/acme",
        "email": DEMO_USER,
        "password": password,
        "role": "admin",
    }


# The demo plants a real effect on churn (Snowflake) and a confounded, useless one
# (Salesforce, adopted by the big accounts that churn less anyway); see store/demo.py.
IMPACT_DEMO = ("snowflake", "salesforce")


def _impact_step(rt: Runtime, summary: dict[str, Any], end: datetime) -> None:
    """Cycle step: impact on churn of the planted integrations, naive vs matched."""
    summary["impact"] = demo_impact(rt.engine, rt.config, end=end)


def demo_impact(engine: Engine, config: Config, *, end: datetime) -> dict[str, Any]:
    """Impact on churn of the demo's planted integrations, adoption measured up to
    ``impact.outcome_window_days`` before ``end``; the full reports are cached for the
    dashboard."""
    from integration_signals.scoring.impact import (
        ImpactRequest,
        analyze,
        default_as_of,
        load_population,
    )
    from integration_signals.scoring.impact_cache import store_impact

    cfg = config.impact
    as_of = default_as_of(cfg, end)
    population = load_population(engine, as_of=as_of)
    keep = (
        "integration", "integration_name", "adopters", "controls", "adopter_mean",
        "control_mean", "lift", "lift_ci95", "naive_lift", "band", "measurable", "verdict",
    )  # fmt: skip
    results, reports = [], []
    for key in IMPACT_DEMO:
        req = ImpactRequest.from_config(cfg, key, "churned", as_of=as_of)
        report = analyze(engine, config, req, population=population)
        reports.append(report)
        results.append({k: report[k] for k in keep})
    # The dashboard's integration pages show these without recomputing them.
    store_impact(engine, reports, now=end)
    return {
        "outcome": "churned",
        "as_of": as_of,
        "matched_on": list(cfg.exact) + list(cfg.near),
        "integrations": results,
    }


def _score_step(rt: Runtime, summary: dict[str, Any], end: datetime) -> Any:
    """Cycle step: score every account and evaluate the signal rules, in one pass as
    `signals score` does; returns the signals report."""
    from integration_signals.scoring.evaluation import evaluate

    done = evaluate(rt.engine, rt.config, as_of=end, full=True)
    report = done.scoring
    with rt.engine.connect() as conn:
        bands = dict(
            conn.execute(
                select(models.AccountScore.band, func.count()).group_by(models.AccountScore.band)
            ).all()
        )
    summary["scoring"] = {**report.as_json(), "bands": bands}
    return done.signals


def _acme_card(rt: Runtime, end: datetime) -> dict[str, Any]:
    """Cycle step: Acme's health card, after the signals so it shows them."""
    from integration_signals.scoring.health import account_health

    return account_health(rt.engine, rt.config, "acme", as_of=end)


def demo_signals(rt: Runtime, *, as_of: datetime, report: Any = None) -> dict[str, Any]:
    """Summarise the episodes and tasks an evaluation opened (``report``, the signals
    half of ``scoring.evaluation.evaluate``; evaluated here when None)."""
    from collections import Counter

    if report is None:
        from integration_signals.scoring.evaluation import evaluate

        report = evaluate(rt.engine, rt.config, as_of=as_of).signals
    t = models.Task.__table__
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(t.c.id, t.c.account_id, t.c.signal_kind, t.c.title, t.c.owner, t.c.due_at)
            .where(t.c.status == "open")
            .order_by(t.c.due_at, t.c.id)
        ).all()
    return {
        "feed_stale": report.feed_stale,
        "fired": dict(Counter(f["kind"] for f in report.fired).most_common()),
        "open_signals": report.open_signals,
        "tasks_created": report.tasks_created,
        "tasks": [
            {
                "id": r.id,
                "account_id": r.account_id,
                "signal_kind": r.signal_kind,
                "title": r.title,
                "owner": r.owner,
                "due_at": r.due_at,
            }
            for r in _one_per_kind(rows)
        ],
    }


def _one_per_kind(rows: list[Any]) -> list[Any]:
    seen: set[str] = set()
    picked = []
    for row in rows:
        if row.signal_kind not in seen:
            seen.add(row.signal_kind)
            picked.append(row)
    return picked


def crm_preview(rt: Runtime, *, now: datetime, account_id: str = "acme") -> dict[str, Any]:
    """What a sync would write to each CRM, as a dry run that contacts no CRM (the demo
    never writes to a real one): counts, and the planned changes of ``account_id``."""
    from integration_signals.syncs.registry import names, without_credentials
    from integration_signals.syncs.run import run_sync

    offline = without_credentials(rt.settings)
    preview: dict[str, Any] = {}
    for destination in names():
        report = run_sync(rt.engine, rt.config, offline, destination, dry_run=True, now=now)
        data = report.as_json()
        reasons: dict[str, int] = {}
        for u in data["unmatched_accounts"]:
            key = re.sub(r"domain \S+ ", "domain ", u["reason"]).split(" (")[0]
            reasons[key] = reasons.get(key, 0) + 1
        mine = next((c for c in data["changes"] if account_id in c["account_ids"]), None)
        preview[destination] = {
            "planned": data["planned"],
            "unchanged": data["unchanged"],
            "unmatched": data["unmatched"],
            "unmatched_reasons": reasons,
            account_id: mine,
        }
    return preview


def demo_slack(rt: Runtime, *, as_of: datetime) -> dict[str, Any]:
    """What the Slack bot answers to `/integration-health acme`, and the tasks it posts:
    posted when Slack is configured, otherwise counted (no network needed)."""
    from integration_signals.bot import views
    from integration_signals.bot.tasks import post_pending_tasks
    from integration_signals.schedules.compose import crm_links

    answer = views.answer(
        rt.engine,
        rt.config,
        rt.settings,
        views.parse_command("acme"),
        channel_id=None,
        now=as_of,
        crm_links=crm_links(rt.config, rt.settings),
    )
    t = models.Task.__table__
    with rt.engine.connect() as conn:
        pending = conn.execute(
            select(func.count()).select_from(t).where(t.c.status != "done", t.c.posted_at.is_(None))
        ).scalar_one()
    configured = bool(rt.settings.slack_bot_token and rt.settings.slack_tasks_channel)
    posted = None
    if configured:
        posted = post_pending_tasks(rt.engine, rt.config, rt.settings, now=as_of).as_json()
    return {
        "command": "/integration-health acme",
        "answer_text": answer["text"],
        "answer_blocks": len(answer["blocks"]),
        "answer": answer,
        "tasks_pending": pending,
        "configured": configured,
        "posted": posted,
    }


def _render_slack(s: dict[str, Any]) -> None:
    print(
        f"Slack: `{s['command']}` answers with {s['answer_blocks']} Block Kit blocks"
        f" ({s['answer_text']})"
    )
    if s["posted"] is not None:
        p = s["posted"]
        print(f"  tasks posted {p['sent']}, failed {p['failed']}")
        for error in p["errors"][:3]:
            print(f"    {error}")
    else:
        print(
            f"  {s['tasks_pending']} tasks ready to post with Claim / Done / Snooze 7d buttons;"
            " set SLACK_BOT_TOKEN and SLACK_TASKS_CHANNEL, then `signals bot post-tasks`"
        )


def _render(d: dict[str, Any]) -> None:
    ev = d["events"]
    print(f"Demo data set built in {d['seconds']}s into {d['database']}")
    print(
        f"  accounts      {d['accounts']:,}  ({', '.join(f'{k} {v}' for k, v in d['segments'].items())})"
    )
    print(f"  integrations  {d['integrations']}   connections {d['connections']:,}")
    print(
        f"  events        accepted {ev['accepted']:,}  duplicates {ev['duplicates']:,}  "
        f"quarantined {ev['quarantined']:,}"
    )
    print("  patterns      " + ", ".join(f"{k} {v}" for k, v in d["patterns"].items()))
    if "scoring" in d:
        sc = d["scoring"]
        print(
            f"Scored {sc['rescored']:,} accounts in {sc['seconds']}s: "
            + ", ".join(f"{k} {v}" for k, v in sorted(sc["bands"].items()))
        )
    sig = d["signals"]
    print(
        f"Signals: {sig['open_signals']} open, {sig['tasks_created']} playbook tasks created"
        + (" (event feed stale: risk signals on hold)" if sig["feed_stale"] else "")
    )
    print("  fired         " + ", ".join(f"{k} {v}" for k, v in sig["fired"].items()))
    print("  tasks (the first due of each kind):")
    for t in sig["tasks"]:
        print(f"    #{t['id']:<4} {t['owner'] or '-':<20} {t['title']}")
    if "acme" in d:
        from integration_signals.cli.commands.scoring_cmds import render_health

        print()
        render_health(d["acme"])
        print()
    _render_crm(d.get("crm") or {})
    if "slack" in d:
        _render_slack(d["slack"])
    print()
    if "impact" in d:
        render_impact(d["impact"])
    print(
        "Run it continuously: `SIGNALS_INGEST_TOKEN=... signals serve --port 8000`"
        " (scheduler, web dashboard, POST /v1/events, POST /v1/batch, /slack/events, GET /healthz)."
    )
    print("Next: `signals quarantine`, `signals accounts import FILE`, `signals ingest FILE`.")
    print("      `signals score`, `signals health acme`, `signals funnel`, `signals ttv`,")
    print("      `signals retention --integration salesforce --plot retention.png`.")
    print(
        "      `signals signals`, `signals tasks --status open`, `signals tasks claim ID --by YOU`."
    )
    print("      `signals impact snowflake --outcome churned`, `signals impact --all --outcome")
    print(
        "      churned`, `signals backtest --as-of 2026-08-01 --horizon 90d`, `signals model train`."
    )
    if "dashboard" in d:
        web = d["dashboard"]
        print()
        print(f"See it in the browser: run `{web['command']}`, open {web['url']}")
        print(f"  and sign in as {web['email']} with password {web['password']} ({web['role']}).")
        print("  Add people with `signals users add EMAIL --role admin|csm|viewer`.")


def render_impact(im: dict[str, Any]) -> None:
    print(
        f"Impact on churn (adoption up to {str(im['as_of'])[:10]}, churn after; matched on "
        f"{', '.join(im['matched_on'])}):"
    )
    for r in im["integrations"]:
        lift = "n/a" if r["lift"] is None else f"{r['lift']:+.1f} pts"
        lo, hi = r["lift_ci95"]
        ci = "" if lo is None else f" [{lo:+.1f}, {hi:+.1f}]"
        print(
            f"  {r['integration_name']:<11} adopters {r['adopters']:>3}  naive "
            f"{r['naive_lift']:+.1f} pts  matched {lift}{ci}  -> {r['band'] or 'n/a'}"
        )
        print(f"  {'':<11} {r['verdict']}")
    print("  (naive = all adopters vs all non-adopters; correlational, not causal)")
    print()


def _render_crm(crm: dict[str, Any]) -> None:
    if not crm:
        return
    print("CRM sync (dry run: no credentials used, nothing written)")
    for destination, p in crm.items():
        line = (
            f"  {destination:<11} {p['planned']:,} records would change,"
            f" {p['unchanged']:,} unchanged, {p['unmatched']:,} accounts unmatched"
        )
        print(line)
        for reason, count in p["unmatched_reasons"].items():
            print(f"              unmatched {count}: {reason}")
        if p["planned"] == 0 and p["unchanged"] == 0:
            print("              (no scores yet: `signals score` fills account_scores)")
        acme = p.get("acme")
        if acme:
            print(f"              Acme Corp -> {acme['record_id']}:")
            for name, change in acme["fields"].items():
                old = "-" if change["old"] is None else change["old"] or "(empty)"
                print(f"                {name}: {old} -> {change['new'] or '(empty)'}")
