"""Alembic environment: runs on the connection or engine handed over by store.engine."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from integration_signals.store import models  # noqa: F401

target_metadata = SQLModel.metadata
config = context.config


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = config.attributes["engine"]
    with engine.begin() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()


run()
