"""CLI conventions: one JSON document with --json, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_ingest_json_is_one_document_and_quarantine_is_not_a_failure(cli, tmp_path: Path):
    path = tmp_path / "e.jsonl"
    path.write_text(
        '{"event_id":"1","type":"sync.succeeded","occurred_at":"2026-11-01T00:00:00Z",'
        '"account_id":"acme","integration":"zendesk","records":5}\nnot json\n'
    )
    result = cli("ingest", str(path), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {k: data[k] for k in ("accepted", "duplicates", "quarantined")} == {
        "accepted": 1,
        "duplicates": 0,
        "quarantined": 1,
    }
    listed = json.loads(cli("quarantine", "--json").stdout)
    assert listed["total"] == 1
    assert listed["items"][0]["line"] == 2 and listed["items"][0]["raw"] == "not json"


def test_missing_file_is_one_line_and_exit_1(cli, tmp_path: Path):
    result = cli("ingest", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 1
    assert "no such file" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_usage_error_exits_2(cli):
    assert cli("ingest").exit_code == 2
    assert cli("no-such-command").exit_code == 2


def test_bad_config_is_refused_at_start_up_naming_the_key(cli, tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[integrations.zendesk]\nname = "Zendesk"\nrhythm = "hourly"\n')
    result = cli("quarantine", env={"SIGNALS_CONFIG": str(bad)})
    assert result.exit_code == 1
    assert "integrations.zendesk.rhythm" in result.stderr


def test_init_writes_an_example_config(cli, tmp_path: Path):
    result = cli("init", "--path", str(tmp_path / "s.toml"), "--json")
    assert result.exit_code == 0
    assert (tmp_path / "s.toml").read_text().startswith("# Built-in defaults")
    assert cli("init", "--path", str(tmp_path / "s.toml")).exit_code == 1


def _bare_env(home: Path) -> dict[str, str]:
    """Nothing configured: no SIGNALS_* or credentials (PYTHONPATH kept for worktrees)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def test_demo_builds_from_a_fresh_directory(tmp_path: Path):
    """`signals demo` with nothing configured: an SQLite file in the working directory."""
    result = subprocess.run(
        [sys.executable, "-m", "integration_signals", "demo", "--accounts", "60", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=_bare_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["accounts"] == 60
    assert data["events"]["accepted"] > 5_000 and data["events"]["quarantined"] == 0
    assert (tmp_path / "signals.db").exists()
    # It ends by saying how to see the dashboard, with a demo user it created.
    web = data["dashboard"]
    assert (web["command"], web["email"], web["role"]) == (
        "signals serve",
        "demo@example.com",
        "admin",
    )
    assert web["url"].startswith("http://127.0.0.1:") and len(web["password"]) >= 12
    again = subprocess.run(
        [sys.executable, "-m", "integration_signals", "demo", "--accounts", "60", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=_bare_env(tmp_path),
    )
    assert again.returncode == 0, again.stderr  # rebuilding replaces the old demo data
    assert json.loads(again.stdout)["events"]["accepted"] == data["events"]["accepted"]
