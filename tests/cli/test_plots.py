"""`--plot` charts people look at: each PNG is opened and must be large enough to read
at 100% zoom and actually show something; `--plot` adds a ``plot`` key to `--json` and
says the path on stderr, nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from matplotlib.image import imread  # noqa: E402


def assert_readable_png(path: Path, *, min_width: int = 800, min_height: int = 500) -> None:
    """A real PNG, at least ``min_width`` x ``min_height`` pixels, not blank: many
    distinct colours and pixels that vary."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height, (width, height)
    rgb = (image[..., :3] * 255).astype("uint8").reshape(-1, 3)
    colours = len({tuple(p) for p in rgb[:: max(1, len(rgb) // 200_000)]})
    assert colours > 50, colours
    assert rgb.std() > 10, rgb.std()
    # Ink covers a fair share of the picture, not one stray line on white.
    assert (rgb.min(axis=1) < 200).mean() > 0.02


def run_json(cli, *args: str) -> tuple[dict, str]:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@pytest.fixture
def demo(cli):
    assert cli("demo", "--accounts", "40", "--json").exit_code == 0
    return cli


def test_retention_plot_with_cohorts_funnel_and_health_history(demo, tmp_path: Path):
    cli = demo
    out = tmp_path / "retention.png"
    plain, _ = run_json(cli, "retention", "--integration", "snowflake", "--cohort", "month")
    data, err = run_json(
        cli, "retention", "--integration", "snowflake", "--cohort", "month", "--plot", str(out)
    )
    # --plot adds the path and changes nothing else in the JSON document.
    assert data.pop("plot") == str(out) and data == {**plain, "as_of": data["as_of"]}
    assert f"chart written to {out}" in err
    assert_readable_png(out)
    overall = tmp_path / "overall.png"
    run_json(cli, "retention", "--integration", "salesforce", "--plot", str(overall))
    assert_readable_png(overall)

    funnel = tmp_path / "funnel.png"
    data, err = run_json(cli, "funnel", "--plot", str(funnel))
    assert data["plot"] == str(funnel) and data["integrations"]
    assert_readable_png(funnel)
    one = tmp_path / "funnel-one.png"
    run_json(cli, "funnel", "--integration", "snowflake", "--plot", str(one))
    assert_readable_png(one)

    # A score history of several days: replay the last days (a score --as-of in the past
    # is a read-only what-if, so history is rebuilt by replay), then score now.
    now = datetime.now(UTC)
    start = (now - timedelta(days=6)).date().isoformat()
    assert cli("replay", "--from", start, "--json").exit_code == 0
    assert cli("score", "--json").exit_code == 0
    health = tmp_path / "health.png"
    data, err = run_json(cli, "health", "acme", "--plot", str(health))
    assert len(data["history"]) >= 2 and data["plot"] == str(health)
    assert "chart written to" in err
    assert_readable_png(health)


def test_human_output_says_where_the_chart_went_on_stderr(demo, tmp_path: Path):
    out = tmp_path / "funnel.png"
    result = demo("funnel", "--plot", str(out))
    assert result.exit_code == 0, result.stderr
    assert f"chart written to {out}" in result.stderr
    assert "chart written" not in result.stdout and "adoption funnel" in result.stdout
    assert_readable_png(out)


def test_impact_all_plots_every_lift_and_reports_progress_on_stderr(cli, engine, tmp_path):
    from tests.scoring.synth import confounded_world

    confounded_world(n=400, effect=-0.25, seed=2).load(engine)
    out = tmp_path / "impact.png"
    result = cli(
        "impact", "--all", "--outcome", "churned", "--as-of", "2026-06-01",
        "--plot", str(out), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)  # stdout is exactly one JSON document
    assert data["plot"] == str(out)
    assert any(r["lift"] is not None for r in data["integrations"])
    assert_readable_png(out)
    # One plain progress line per integration on stderr (it is not a terminal here).
    steps = [line for line in result.stderr.splitlines() if line.startswith("impact ")]
    assert len(steps) == len(data["integrations"])
    assert steps[-1].startswith(f"impact {len(steps)}/{len(steps)} ")


def test_impact_plot_needs_all(demo, tmp_path: Path):
    result = demo("impact", "zendesk", "--outcome", "renewed", "--plot", str(tmp_path / "x.png"))
    assert result.exit_code == 2
    assert "use it with --all" in result.stderr
