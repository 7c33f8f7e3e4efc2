"""web: dashboard users and their sessions, an index for "rescored since T", and the
portfolio's covering indexes

Revision ID: 0003_web
Revises: 0002_scoring
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003_web"
down_revision = "0002_scoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("email"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("csrf_token", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_web_sessions_email", "web_sessions", ["email"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    op.create_index("ix_account_scores_scored_at", "account_scores", ["scored_at"])
    # The portfolio page reads these columns of every filtered account (tiles, sorts):
    # a covering index keeps it off the wide rows. PostgreSQL has no btree opclass for
    # json, so there `segments` rides along as an INCLUDE column; SQLite has no INCLUDE
    # and stores it as the last key column.
    portfolio_columns = ["account_id", "score", "band", "stage", "active_integrations"]
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_account_scores_portfolio",
            "account_scores",
            portfolio_columns,
            postgresql_include=["segments"],
        )
    else:
        op.create_index(
            "ix_account_scores_portfolio", "account_scores", [*portfolio_columns, "segments"]
        )
    # Broken connections per account / integration (the portfolio's tile and filter).
    op.create_index("ix_connections_state", "connections", ["state", "integration", "account_id"])


def downgrade() -> None:
    op.drop_index("ix_connections_state", table_name="connections")
    op.drop_index("ix_account_scores_portfolio", table_name="account_scores")
    op.drop_index("ix_account_scores_scored_at", table_name="account_scores")
    op.drop_index("ix_web_sessions_expires_at", table_name="web_sessions")
    op.drop_index("ix_web_sessions_email", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("users")
