"""Shared fixtures. The database comes from SIGNALS_TEST_DATABASE_URL: unset or
``sqlite`` gives a fresh SQLite file per test; a PostgreSQL URL gives a private
database created for the session, emptied between tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from integration_signals.store.engine import make_engine
from tests.databases import private_pg_database

_ENV_PREFIXES = ("SIGNALS_", "SALESFORCE_", "HUBSPOT_", "SLACK_")


def _requested_url() -> str:
    return os.environ.get("SIGNALS_TEST_DATABASE_URL", "sqlite") or "sqlite"


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str | None]:
    requested = _requested_url()
    if requested == "sqlite" or requested.startswith("sqlite"):
        yield None
        return
    with private_pg_database(requested) as url:
        yield url


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    from sqlmodel import SQLModel

    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def db_url(_pg_database: str | None, tmp_path: Path) -> str:
    """A database URL with an empty, migrated schema, private to this test."""
    if _pg_database is None:
        return f"sqlite:///{tmp_path / 'signals.db'}"
    _truncate_all(_pg_database)
    return _pg_database


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from an environment without our settings or credentials."""
    for key in list(os.environ):
        if key.startswith(_ENV_PREFIXES) and key != "SIGNALS_TEST_DATABASE_URL":
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run `signals ...` in-process against the test database; returns the Result."""
    from integration_signals.cli import (
        app,
        commands,  # noqa: F401
    )

    monkeypatch.setenv("SIGNALS_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return run
