"""Long steps show progress on stderr: a bar at a terminal, a plain line per step
elsewhere; stdout keeps exactly the report or its one JSON document."""

from __future__ import annotations

import io
import json

from rich.console import Console

from integration_signals.cli.progress import Steps


def test_without_a_terminal_each_step_is_one_plain_line():
    out = io.StringIO()
    with Steps("demo", 2, console=Console(file=out, width=200)) as steps:
        with steps.step("generate"):
            pass
        steps.done("ingest 10 events")
    lines = out.getvalue().splitlines()
    assert [line.rsplit(":", 1)[0] for line in lines] == [
        "demo 1/2 generate",
        "demo 2/2 ingest 10 events",
    ]
    assert all(line.endswith("s") for line in lines)
    assert "\x1b" not in out.getvalue()  # no control codes in a log


def test_at_a_terminal_a_bar_is_drawn_and_cleared():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with Steps("impact", 3, console=console) as steps:
        for name in ("Slack", "Snowflake", "Zendesk"):
            with steps.step(name):
                pass
    text = out.getvalue()
    assert "impact" in text and "\x1b" in text  # drawn with control codes
    assert "impact 1/3 Slack:" not in text  # no plain lines as well


def test_demo_json_stays_one_document_and_its_steps_go_to_stderr(cli):
    result = cli("demo", "--accounts", "40", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["accounts"] == 40
    steps = [line for line in result.stderr.splitlines() if line.startswith("demo ")]
    assert len(steps) == 10 and steps[0].startswith("demo 1/10 generate")
    assert steps[-1].startswith("demo 10/10 ")
    assert "demo 1/10" not in result.stdout
