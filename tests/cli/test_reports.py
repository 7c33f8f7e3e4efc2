"""The everyday reports: `signals score` narrows and cuts to a screenful, `signals
signals` tells each episode in words with its task, and every table fits the terminal
without splitting a word; tables show display names, --json keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from integration_signals.scoring.signals import evaluate_signals
from tests.scoring.builders import NOW, Feed, account, acme_like, import_accounts
from tests.scoring.world import AS_OF, CONFIG, TODAY, World

WHEN = NOW.isoformat()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def many(engine: Engine) -> Engine:
    """Acme (healthy, Dana's) and 24 quiet accounts (at risk) across two segments."""
    rows = [account("acme", name="Acme Corp", csm="dana@example.com")]
    for n in range(24):
        rows.append(
            account(
                f"q{n:02d}",
                "smb" if n % 2 else "mid_market",
                name=f"Quiet Customer Number {n:02d}",
                csm="lee@example.com",
            )
        )
    import_accounts(engine, rows)
    feed = Feed()
    acme_like(feed)
    feed.ingest(engine)
    return engine


def _table_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("│")]


def test_score_json_without_filters_lists_every_account_as_before(cli, many):
    data = json.loads(cli("score", "--as-of", WHEN, "--json").stdout)
    assert [a["account_id"] for a in data["accounts"]] == ["acme"] + [
        f"q{n:02d}" for n in range(24)
    ]
    assert data["matched"] == 25
    assert {"as_of", "run", "signals", "accounts"} <= set(data)


def test_score_table_shows_a_screenful_and_says_how_many_more(cli, many):
    result = cli("score", "--as-of", WHEN, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.stderr
    assert len(_table_lines(result.stdout)) == 20
    assert "… 5 more accounts (use --limit or --json)" in result.stdout
    everything = cli("score", "--as-of", WHEN, "--limit", "0", env={"COLUMNS": "120"})
    assert len(_table_lines(everything.stdout)) == 25
    assert "more accounts" not in everything.stdout


def test_score_filters_apply_to_the_table_and_to_json(cli, many):
    def ids(*args: str) -> list[str]:
        out = cli("score", "--as-of", WHEN, "--json", *args)
        assert out.exit_code == 0, out.stderr
        return [a["account_id"] for a in json.loads(out.stdout)["accounts"]]

    assert ids("--band", "healthy") == ["acme"]
    assert ids("--owner", "DANA@example.com") == ["acme"]
    smb = ids("--segment", "smb", "--band", "at-risk")
    assert smb == [f"q{n:02d}" for n in range(1, 24, 2)]
    assert ids("--sort", "-score", "--limit", "2")[0] == "acme"
    assert ids("--sort", "name")[:2] == ["acme", "q00"]
    table = cli("score", "--as-of", WHEN, "--band", "healthy", env={"COLUMNS": "120"})
    assert "Acme Corp" in table.stdout and "Quiet Customer" not in table.stdout


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--band", "great"], "not a band"),
        (["--sort", "mood"], "not a sort field"),
        (["--segment", "galactic"], "--segment"),
    ],
    ids=["band", "sort", "segment"],
)
def test_score_refuses_a_bad_filter_as_a_usage_error(cli, many, args, hint):
    result = cli("score", "--as-of", WHEN, *args)
    assert result.exit_code == 2 and hint in result.stderr


# ---------------------------------------------------------------- signals and tasks


def _signals_world(engine: Engine) -> None:
    w = World(engine)
    w.account("acme", name="Acme Corp", csm="dana@example.com")
    w.account("beta", name="Beta Industries", csm="lee@example.com")
    w.syncs(TODAY - timedelta(days=1), ok=1, failed=5, account="acme")
    w.syncs(TODAY - timedelta(days=20), account="beta")
    w.syncs(TODAY - timedelta(days=2), account="beta", integration="hubspot")
    w.event("auth.expired", AS_OF - timedelta(days=3), "beta", "hubspot")
    w.ingest()
    evaluate_signals(engine, CONFIG, as_of=AS_OF - timedelta(days=3) + timedelta(hours=1))
    evaluate_signals(engine, CONFIG, as_of=AS_OF)


def test_signals_tell_the_account_integration_reason_age_and_task(cli, engine):
    _signals_world(engine)
    data = json.loads(cli("signals", "--json", "--as-of", AS_OF.isoformat()).stdout)
    items = {(i["account_id"], i["kind"]): i for i in data["signals"]}
    degraded = items[("acme", "health_degradation")]
    # every key it had, and the new ones
    assert {"id", "account_id", "kind", "subject", "status", "fired_at", "resolved_at"} <= set(
        degraded
    )
    assert degraded["account_name"] == "Acme Corp"
    assert degraded["integration"] == "salesforce"  # --json keys
    assert degraded["integration_name"] == "Salesforce"
    # the reason is the task's own sentence
    assert degraded["reason"] == degraded["task"]["title"]
    assert "Salesforce at Acme Corp" in degraded["reason"] and "sync success" in degraded["reason"]
    assert degraded["task"]["owner"] == "dana@example.com"
    assert degraded["task"]["status"] == "open"
    expired = items[("beta", "auth_expired")]
    assert expired["open_for_days"] == 2  # fired 3 days ago less an hour

    table = cli("signals", "--wide", "--as-of", AS_OF.isoformat(), env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.stderr
    line = next(x for x in table.stdout.splitlines() if "Beta Industries" in x and "auth" in x)
    assert "HubSpot" in line and "Fix auth: HubSpot credentials expired" in line
    assert "open 2 days" in line
    assert f"#{expired['task']['id']} open" in line and "lee@example.com" in line


def test_signals_filter_group_and_limit(cli, engine):
    _signals_world(engine)
    when = AS_OF.isoformat()

    def kinds(*args: str) -> set[tuple[str, str]]:
        out = cli("signals", "--json", "--as-of", when, *args)
        assert out.exit_code == 0, out.stderr
        return {(i["account_id"], i["kind"]) for i in json.loads(out.stdout)["signals"]}

    assert kinds("--owner", "dana@example.com") == {("acme", "health_degradation")}
    assert kinds("--kind", "auth_expired") == {("beta", "auth_expired")}
    assert len(kinds("--limit", "1")) == 1
    grouped = cli("signals", "--group-by", "account", "--as-of", when, env={"COLUMNS": "120"})
    assert grouped.exit_code == 0, grouped.stderr
    assert "Acme Corp (acme): 1" in grouped.stdout
    assert "Beta Industries (beta): 2" in grouped.stdout
    by_kind = cli("signals", "--group-by", "kind", "--as-of", when, env={"COLUMNS": "120"})
    assert "auth expired: 1" in by_kind.stdout and "abandonment: 1" in by_kind.stdout
    assert cli("signals", "--group-by", "weather").exit_code == 2


def test_tasks_take_the_same_filters(cli, engine):
    _signals_world(engine)
    when = AS_OF.isoformat()
    data = json.loads(cli("tasks", "--json", "--as-of", when, "--limit", "2").stdout)
    assert len(data["tasks"]) == 2 and data["matched"] == 3
    mid = json.loads(cli("tasks", "--json", "--as-of", when, "--segment", "mid_market").stdout)
    assert mid["matched"] == 3
    assert (
        json.loads(cli("tasks", "--json", "--as-of", when, "--segment", "smb").stdout)["tasks"]
        == []
    )
    by_account = json.loads(cli("tasks", "--json", "--as-of", when, "--sort", "-account").stdout)
    assert by_account["tasks"][0]["account_name"] == "Beta Industries"
    table = cli("tasks", "--as-of", when, "--limit", "1", env={"COLUMNS": "120"})
    assert "… 2 more tasks (use --limit or --json)" in table.stdout


# ---------------------------------------------------------------- widths and names


@pytest.fixture
def funnel_world(engine: Engine) -> Engine:
    import_accounts(engine, [account("acme", name="Acme Corp")])
    import_accounts(
        engine,
        [account(f"s{n}", "smb", name=f"Small Shop With A Long Name {n}") for n in range(3)],
    )
    feed = Feed()
    acme_like(feed)
    for n in range(3):
        feed.install(f"s{n}", "teams", 100)
        feed.syncs(f"s{n}", "teams", range(20, 100))
    feed.ingest(engine)
    return engine


def _run(db_url: str, width: int, *args: str) -> str:
    """The real console script at a terminal width."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIGNALS_")},
        "SIGNALS_DATABASE_URL": db_url,
        "PYTHONPATH": str(ROOT),
        "COLUMNS": str(width),
    }
    result = subprocess.run(
        [sys.executable, "-m", "integration_signals", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _assert_fits(out: str, width: int, rows: list[list[str]]) -> None:
    """Every line fits, every row is one line, and every cell's words appear whole."""
    lines = out.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    body = _table_lines(out)
    assert len(body) == len(rows)
    for line, cells in zip(body, rows, strict=True):
        for cell in cells:
            assert cell in line, (cell, line)


@pytest.mark.parametrize("width", [80, 120])
def test_funnel_and_score_fit_the_terminal_without_splitting_words(funnel_world, db_url, width):
    funnel = json.loads(_run(db_url, width, "funnel", "--as-of", WHEN, "--json"))
    out = _run(db_url, width, "funnel", "--as-of", WHEN)
    _assert_fits(
        out,
        width,
        [[r["name"], str(r["installed"]), f"{r['activated']} ("] for r in funnel["integrations"]],
    )
    assert "Microsoft Teams" in out and "integratio\n" not in out
    for header in ("integration", "installed", "activated", "active"):
        assert header in out  # headers wrap at spaces only
    scores = json.loads(_run(db_url, width, "score", "--as-of", WHEN, "--json"))
    out = _run(db_url, width, "score", "--as-of", WHEN, "--sort", "account")
    _assert_fits(
        out,
        width,
        [[a["account_id"], a["name"], str(a["score"]), a["band"]] for a in scores["accounts"]],
    )
    # the reason is cut with an ellipsis rather than wrapped onto more lines
    long_reason = max((a["reason"] or "" for a in scores["accounts"]), key=len)
    if len(long_reason) > width // 2:
        assert "…" in out


def test_wide_shows_every_column(funnel_world, db_url):
    narrow = _run(db_url, 80, "funnel", "--as-of", WHEN)
    wide = _run(db_url, 80, "funnel", "--as-of", WHEN, "--wide")
    assert "uninstalled" not in narrow
    for header in ("uninstalled", "retained 30d", "retained 90d", "largest drop"):
        assert header in wide


def test_tables_show_display_names_and_json_keeps_keys(cli, funnel_world):
    for command in ("ttv", "funnel"):
        table = cli(command, "--as-of", WHEN, env={"COLUMNS": "120"})
        assert table.exit_code == 0, table.stderr
        assert "Microsoft Teams" in table.stdout and "Salesforce" in table.stdout
        assert "salesforce" not in table.stdout
        data = json.loads(cli(command, "--as-of", WHEN, "--json").stdout)
        keys = {r["integration"] for r in data["integrations"]}
        assert {"teams", "salesforce"} <= keys
    retention = cli("retention", "--integration", "teams", "--as-of", WHEN)
    assert retention.stdout.startswith("Microsoft Teams:")
    assert (
        json.loads(cli("retention", "--integration", "teams", "--as-of", WHEN, "--json").stdout)[
            "integration"
        ]
        == "teams"
    )


def test_impact_footer_says_what_no_measurable_effect_means_once(cli, db_url):
    from integration_signals.store.engine import make_engine
    from tests.scoring.synth import confounded_world

    confounded_world(n=400, effect=-0.25, seed=2).load(make_engine(db_url))
    result = cli(
        "impact", "--all", "--outcome", "churned", "--as-of", "2026-06-01", env={"COLUMNS": "160"}
    )
    assert result.exit_code == 0, result.stderr
    footer = [line for line in result.stdout.splitlines() if "question continued" in line]
    assert len(footer) == 1
    assert footer[0].count("no measurable effect") == 1
    assert "= no measurable effect" not in result.stdout
