"""scoring: explanation details on account_scores, data watermark on scoring_runs

Revision ID: 0002_scoring
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002_scoring"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))
    with op.batch_alter_table("scoring_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("watermark", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("scoring_runs", schema=None) as batch_op:
        batch_op.drop_column("watermark")
    with op.batch_alter_table("account_scores", schema=None) as batch_op:
        batch_op.drop_column("details")
