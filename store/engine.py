"""Engine creation and schema migration (every command migrates on first use)."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

from integration_signals.store import models  # noqa: F401  (registers the tables on SQLModel.metadata)

MIGRATIONS = Path(__file__).parent / "migrations"
_migrated: set[str] = set()
_lock = threading.Lock()


class DatabaseError(Exception):
    """The database cannot be reached or migrated; the message says which and what to do."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-200000")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA wal_autocheckpoint=16384")
    cur.close()


def make_engine(url: str, *, migrate: bool = True) -> Engine:
    """An engine for ``url`` with the schema at the newest migration."""
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseError(
            f"database URL {url!r} is not a valid SQLAlchemy URL; fix SIGNALS_DATABASE_URL"
        ) from None
    if parsed.drivername == "postgresql" or parsed.drivername == "postgres":
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs: dict = {}
    if parsed.drivername.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(parsed, **kwargs)
    if is_sqlite(engine):
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate:
        migrate_to_head(engine)
    return engine


def _alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = None
    cfg.attributes["engine"] = engine
    return cfg


def migrate_to_head(engine: Engine) -> None:
    """Create or upgrade the schema; cheap when it is already current."""
    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        if key in _migrated:
            return
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = _alembic_config(engine)
        head = ScriptDirectory.from_config(cfg).get_current_head()
        try:
            with engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        except Exception as exc:
            raise DatabaseError(
                f"cannot connect to the database {engine.url.render_as_string(hide_password=True)}"
                f" ({type(exc).__name__}); check SIGNALS_DATABASE_URL and that the server runs"
            ) from None
        if current != head:
            with engine.begin() as conn:
                if not is_sqlite(engine):
                    # Several processes may start at once: one migrates, the others wait.
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(72616)")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        _migrated.add(key)


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()
