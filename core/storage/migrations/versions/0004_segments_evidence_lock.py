"""recording segment index, evidence lock on incidents

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(
            sa.Column("evidence_locked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=False, unique=True),
        sa.Column("start_ts", sa.Float(), nullable=False),
        sa.Column("end_ts", sa.Float(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_segments_camera_start", "segments", ["camera_id", "start_ts"])
    op.create_index("ix_segments_start", "segments", ["start_ts"])
    op.create_index("ix_incidents_locked", "incidents", ["evidence_locked"])


def downgrade() -> None:
    op.drop_index("ix_incidents_locked", table_name="incidents")
    op.drop_table("segments")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("evidence_locked")
