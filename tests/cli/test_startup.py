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
loaded = sorted({m.split(".")[0] for m in sys.modules})
print(code, " ".join(loaded), file=sys.stderr)
"""


def loaded_by(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """The exit code and the top-level modules imported by `signals *args`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALS_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=300,
    )
    code, modules = done.stderr.strip().splitlines()[-1].split(" ", 1)
    return int(code), set(modules.split())


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
    code, modules = loaded_by("health", "acme", env=env)
    assert code == 0
    assert modules.isdisjoint(NEVER), sorted(modules & set(NEVER))
    # Today's stored percentiles are read as they are: no numpy either.
    assert "numpy" not in modules
