"""`signals --help` groups commands by task, flags read as flags, `--version` and shell
completion work: all over the real entry point in its own process."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import integration_signals

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_GROUPS = Path(__file__).with_name("help_groups.txt")


def signals(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("SIGNALS_", "_SIGNALS", "COMP_"))
    }
    base |= {"PYTHONPATH": str(ROOT), "COLUMNS": "100", "TERM": "dumb", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "integration_signals", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=120,
    )


def command_groups(help_text: str) -> str:
    """The panels of a help screen and the commands in each, in order (the one-line
    descriptions left out, so rewording a command's help does not break this)."""
    out: list[str] = []
    panel = None
    for line in help_text.splitlines():
        if line.startswith("╭─"):
            panel = line.strip("╭─╮ ").rstrip("─ ")
            if panel != "Options":
                out.append(panel)
        elif panel and panel != "Options" and line.startswith("│ ") and line[2] != " ":
            out.append("  " + line[2:].split()[0])
    return "\n".join(out) + "\n"


def test_help_groups_commands_by_task_in_order() -> None:
    result = signals("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.lstrip().startswith("Usage: signals [OPTIONS] COMMAND")
    assert command_groups(result.stdout) == EXPECTED_GROUPS.read_text("utf-8")


@pytest.mark.parametrize(
    "args",
    [("--help",), ("health", "--help"), ("sync", "hubspot", "--help"), ("tasks", "--help")],
    ids=["root", "health", "sync-hubspot", "tasks"],
)
def test_boolean_options_show_as_flags_without_a_type(args: tuple[str, ...]) -> None:
    result = signals(*args)
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout
    assert "--help" in result.stdout


def test_version_prints_the_package_version_and_exits_0() -> None:
    result = signals("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"signals {integration_signals.__version__}\n"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert integration_signals.__version__ == project["version"]
    assert importlib.metadata.version("integration-signals") == project["version"]


def test_version_needs_no_database_or_valid_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml [")
    result = signals("--version", env={"SIGNALS_CONFIG": str(bad)})
    assert result.returncode == 0 and result.stdout.startswith("signals ")


def test_shell_completion_script_and_answers() -> None:
    script = signals("--show-completion", "bash")
    assert script.returncode == 0, script.stderr
    assert "_SIGNALS_COMPLETE=complete_bash" in script.stdout
    assert "--install-completion" in signals("--help").stdout

    def complete(words: str, cword: int) -> list[str]:
        env = {"_SIGNALS_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
        done = signals(env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("signals sy", 1) == ["sync"]
    # The destinations' commands are made lazily; completion still finds them.
    assert complete("signals sync ", 2) == ["salesforce", "hubspot", "history"]
