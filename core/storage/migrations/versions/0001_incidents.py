"""incidents table

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("track_ids", sa.JSON(), nullable=False),
        sa.Column("zone", sa.String(64), nullable=True),
        sa.Column("start_ts", sa.Float(), nullable=False),
        sa.Column("end_ts", sa.Float(), nullable=True),
        sa.Column("peak_score", sa.Float(), nullable=False),
        sa.Column("clip_start_ts", sa.Float(), nullable=False),
        sa.Column("clip_end_ts", sa.Float(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("snapshot_path", sa.String(512), nullable=True),
        sa.Column("created_ts", sa.Float(), nullable=False),
    )
    op.create_index("ix_incidents_camera_start", "incidents", ["camera_id", "start_ts"])
    op.create_index("ix_incidents_start", "incidents", ["start_ts"])
    op.create_index("ix_incidents_type_start", "incidents", ["type", "start_ts"])


def downgrade() -> None:
    op.drop_table("incidents")
