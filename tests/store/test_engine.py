"""Every command migrates on first use; when the schema is current that costs one query
and never imports Alembic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from integration_signals.store.engine import MIGRATIONS, _alembic_config, known_head, make_engine

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from integration_signals.store.engine import make_engine, table_names
engine = make_engine(sys.argv[1])
print("alembic" in sys.modules, "accounts" in table_names(engine))
"""


def _probe(url: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_head_read_from_the_files_is_alembics_head(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", migrate=False)
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    assert known_head() == head
    assert (MIGRATIONS / "versions").is_dir()


def test_a_new_database_is_migrated_and_a_current_one_skips_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'signals.db'}"
    assert _probe(url) == "True True"  # created: Alembic ran the migrations
    assert _probe(url) == "False True"  # at head: one query, no Alembic


def test_a_database_not_at_head_is_handed_to_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'signals.db'}"
    _probe(url)
    engine = make_engine(url, migrate=False)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'not-a-revision'")
    engine.dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url], capture_output=True, text=True, env=env, timeout=120
    )
    # Alembic is asked, and refuses a revision it does not know (as before this check).
    assert done.returncode != 0 and "not-a-revision" in done.stderr
