"""camera config versions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "camera_config_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_ts", sa.Float(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("comment", sa.String(512), nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=True),
        sa.Column("cameras", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("camera_config_versions")
