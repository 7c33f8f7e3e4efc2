"""Engine creation and schema migration (every command migrates on first use)."""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

from integration_signals.store import models  # noqa: F401  (registers the tables on SQLModel.metadata)

MIGRATIONS = Path(__file__).parent / "migrations"
_migrated: set[str] = set()
_lock = threading.Lock()


# PostgreSQL session settings for our workload. A scoring run sums the rollups of
# 500,000 connections by connection: with the default 4 MB work_mem that hash
# aggregate spilled 2.7 GB to disk (56 s instead of 35 s at 100,000 accounts), and JIT
# compilation of those statements costs more than it saves at this size.
PG_SESSION_OPTIONS = "-c work_mem=128MB -c jit=off"


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
        # The URL's own ?options= come after ours, so they win.
        own = parsed.query.get("options")
        own = own if isinstance(own, str) else " ".join(own or ())
        kwargs["connect_args"] = {"options": f"{PG_SESSION_OPTIONS} {own}".strip()}
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


_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.M)


@lru_cache(maxsize=1)
def known_head() -> str | None:
    """The newest migration's revision, read from the files in ``migrations/versions``
    without Alembic (importing it and its script directory costs a third of a second
    that every command would pay). None when the files do not show exactly one head
    in a form this reads; Alembic then decides."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text("utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            return None
        value = down.group(1).split("#", 1)[0].strip()
        if value != "None":
            if not re.fullmatch(r"['\"][^'\"]+['\"]", value):
                return None  # a merge (a tuple of parents): leave it to Alembic
            parents.add(value[1:-1])
        revisions.add(revision.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def _stored_revisions(engine: Engine) -> list[str]:
    """The revisions recorded in the database ([] for a new one)."""
    try:
        with engine.connect() as conn:
            if not engine.dialect.has_table(conn, "alembic_version"):
                return []
            return list(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
    except Exception as exc:
        raise DatabaseError(
            f"cannot connect to the database {engine.url.render_as_string(hide_password=True)}"
            f" ({type(exc).__name__}); check SIGNALS_DATABASE_URL and that the server runs"
        ) from None


def _upgrade(engine: Engine, stored: list[str]) -> None:
    """Alembic's own check, and the upgrade when the database is behind."""
    from alembic import command
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(engine)
    if stored == [ScriptDirectory.from_config(cfg).get_current_head()]:
        return
    with engine.begin() as conn:
        if not is_sqlite(engine):
            # Several processes may start at once: one migrates, the others wait.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(72616)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def migrate_to_head(engine: Engine) -> None:
    """Create or upgrade the schema; cheap when it is already current (one query,
    Alembic is only imported when there is something to do)."""
    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        if key in _migrated:
            return
        stored = _stored_revisions(engine)
        head = known_head()
        if head is None or stored != [head]:
            _upgrade(engine, stored)
        _migrated.add(key)


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()
