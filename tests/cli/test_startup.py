"""Start-up: a command imports what it uses and nothing else, so `signals --help` and
`signals health ACCOUNT` do not pay for scikit-learn, matplotlib, Slack, the CRM clients,
Alembic or (for help) the ORM and settings. Checked in a fresh interpreter each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Modules that must not be imported by the command under test.
NEVER = (
    "sklearn",
    "matplotlib",
    "lifelines",
    "slack_bolt",
    "slack_sdk",
    "simple_salesforce",
    "hubspot",
    "fastapi",
    "uvicorn",
    "apscheduler",
    "alembic",
)
NOT_FOR_HELP = (*NEVER, "sqlalchemy", "sqlmodel", "pydantic", "pydantic_settings", "numpy")

PROBE = """
import sys
from integration_signals.cli import main
sys.argv = ["signals", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
import gc
loaded = sorted({m.split(".")[0] for m in sys.modules})
print(code, gc.isenabled(), " ".join(loaded), file=sys.stderr)
"""


def run_probe(*args: str, env: dict[str, str] | None = None) -> tuple[int, bool, set[str]]:
    """The exit code, whether the garbage collector runs at the end, and the top-level
    modules imported by `signals *args`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALS_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=300,
    )
    code, gc_on, modules = done.stderr.strip().splitlines()[-1].split(" ", 2)
    return int(code), gc_on == "True", set(modules.split())


def loaded_by(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """The exit code and the top-level modules imported by `signals *args`."""
    code, _gc_on, modules = run_probe(*args, env=env)
    return code, modules


def test_help_imports_neither_the_orm_nor_settings_nor_any_integration() -> None:
    code, modules = loaded_by("--help")
    assert code == 0
    assert modules.isdisjoint(NOT_FOR_HELP), sorted(modules & set(NOT_FOR_HELP))


def test_version_is_as_light_as_help() -> None:
    code, modules = loaded_by("--version")
    assert code == 0
    assert modules.isdisjoint(NOT_FOR_HELP), sorted(modules & set(NOT_FOR_HELP))


def test_health_imports_no_integration_client_and_no_alembic_at_head(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,name,segment\nacme,Acme Corp,enterprise\n")
    env = {"SIGNALS_DATABASE_URL": f"sqlite:///{tmp_path / 'signals.db'}"}
    assert loaded_by("accounts", "import", str(accounts), env=env)[0] == 0
    assert loaded_by("score", env=env)[0] == 0
    code, gc_on, modules = run_probe("health", "acme", env=env)
    assert code == 0
    assert gc_on  # held during start-up only: back once the command opened the database
    assert modules.isdisjoint(NEVER), sorted(modules & set(NEVER))
    # Today's stored percentiles are read as they are: no numpy either.
    assert "numpy" not in modules


def test_the_collector_comes_back_by_itself_for_a_command_that_never_opens_the_database():
    code = (
        "import gc, time\n"
        "from integration_signals.cli.runtime import pause_gc_for_start_up\n"
        "pause_gc_for_start_up(at_most=0.2)\n"
        "paused = not gc.isenabled()\n"
        "time.sleep(1.0)\n"
        "print(paused, gc.isenabled(), gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert done.stdout.split() == ["True", "True", "True"], done.stderr
