"""The wheel installs one import root, `integration_signals`, and nothing else: a user's
own top-level `bot` module or another package named `store` cannot shadow our layers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SHADOW = 'raise ImportError("the shadowing {name!r} was imported instead of ours")\n'


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--wheel-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("integration_signals-*.whl")
    return built


def test_the_wheel_holds_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"integration_signals"}
    for layer in ("store", "scoring", "syncs", "bot", "web", "schedules", "cli"):
        assert f"integration_signals/{layer}/__init__.py" in names
    # Data files the layers read at run time travel with them.
    assert "integration_signals/defaults.toml" in names
    assert "integration_signals/bot/manifest.yaml" in names
    assert "integration_signals/web/templates/account.html" in names
    assert "integration_signals/web/static/app.css" in names
    assert "integration_signals/web/static/app.js" in names
    assert any(n.startswith("integration_signals/store/migrations/versions/") for n in names)


def test_signals_demo_works_from_a_fresh_venv_beside_a_bot_and_a_store_module(
    wheel: Path, tmp_path: Path
) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    fresh = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(fresh), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # The dependencies come from this test run's environment (no download), appended
    # after the fresh venv's own site-packages; our package comes only from the wheel.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # Without PYTHONPATH: pip must not take a checkout on the path for our installed package.
    pip_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(fresh), "install", "--quiet", "--no-deps"]
        + [str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
        env=pip_env,
    )
    # Top-level modules named like our layers, installed beside us and in the working
    # directory: a generic name must never be what our code imports.
    work = tmp_path / "work"
    work.mkdir()
    for where in (site, work):
        (where / "bot.py").write_text(SHADOW.format(name="bot"))
        (where / "store").mkdir()
        (where / "store" / "__init__.py").write_text(SHADOW.format(name="store"))

    env = {
        "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SIGNALS_DATABASE_URL": f"sqlite:///{work / 'signals.db'}",
    }
    shadowed = subprocess.run(
        [str(fresh), "-c", "import bot"], cwd=work, env=env, capture_output=True, text=True
    )
    assert "the shadowing 'bot' was imported" in shadowed.stderr  # the trap is armed
    found = subprocess.run(
        [str(fresh), "-c", "import integration_signals.store as s; print(s.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0, found.stderr[-2000:]
    where = found.stdout.strip()
    assert where.startswith(str(site / "integration_signals" / "store"))
    assert not where.startswith(str(ROOT))

    result = subprocess.run(
        [str(env_dir / "bin" / "signals"), "demo", "--accounts", "40", "--json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "shadowing" not in result.stderr
    demo = json.loads(result.stdout)
    assert demo["acme"]["account_id"] == "acme" and demo["acme"]["score"] is not None
    assert (work / "signals.db").stat().st_size > 0
