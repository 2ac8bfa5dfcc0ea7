"""incident details, traffic counts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("details", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "traffic_counts",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("line", sa.String(64), primary_key=True),
        sa.Column("label", sa.String(16), primary_key=True),
        sa.Column("direction", sa.String(8), primary_key=True),
        sa.Column("bucket_start_ts", sa.Float(), primary_key=True),
        sa.Column("bucket_s", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_traffic_counts_time", "traffic_counts", ["bucket_start_ts"])


def downgrade() -> None:
    op.drop_table("traffic_counts")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("details")
