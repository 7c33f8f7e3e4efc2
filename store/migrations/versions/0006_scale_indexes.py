"""Indexes found missing at 100,000 accounts (bench/scale.py): the newest connection
event, which the feed_stale guard asks at every evaluation (a scan of 500,000
connections, 0.3 s on PostgreSQL, became one index probe), and the accounts' creation
time, which every incremental evaluation reads to find whose age crossed an onboarding
threshold (a range probe instead of a scan of every account)

Revision ID: 0006_scale_indexes
Revises: 0004_item_failures
"""

from __future__ import annotations

from alembic import op

revision = "0006_scale_indexes"
down_revision = "0004_item_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_connections_last_event", "connections", ["last_event_at"])
    op.create_index("ix_accounts_created", "accounts", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_accounts_created", table_name="accounts")
    op.drop_index("ix_connections_last_event", table_name="connections")
