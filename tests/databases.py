"""A private PostgreSQL database for tests: created empty, dropped afterwards (its
connections ended first). The session's database (tests/conftest.py) and the second
database of the replay equality test both come from here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def private_pg_database(requested: str, *, prefix: str = "signals_test") -> Iterator[str]:
    """Create a database on the server of ``requested`` and yield its URL."""
    base = make_url(requested).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from integration_signals.store import engine as engine_mod

        engine_mod._migrated.discard(url)
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
