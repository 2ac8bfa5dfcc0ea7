"""incident search indexes: score order, locked by time; labels, notes text (PostgreSQL)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # sort=score pages walk this in order; the id makes ties (equal scores) ordered too.
    op.create_index("ix_incidents_score", "incidents", ["peak_score", "id"])
    # evidence_locked=true newest first: the bare boolean index made both DBs fetch
    # every locked row and sort them. The pair still serves "locked" lookups alone.
    op.drop_index("ix_incidents_locked", table_name="incidents")
    op.create_index("ix_incidents_locked_start", "incidents", ["evidence_locked", "start_ts"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # labels ?| array[...] (core.storage.search); SQLite has no such index type.
        op.create_index(
            "ix_incidents_labels",
            "incidents",
            [sa.text("(labels::jsonb)")],
            postgresql_using="gin",
        )
        # Notes search (ILIKE '%term%') reads every note without it: 130 ms for 150 000
        # notes. pg_trgm ships with PostgreSQL (contrib) and is a trusted extension, so
        # the database owner may create it; where it is missing, search still works.
        available = bind.execute(
            sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        ).scalar()
        if available:
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            op.create_index(
                "ix_incident_notes_text_trgm",
                "incident_notes",
                ["text"],
                postgresql_using="gin",
                postgresql_ops={"text": "gin_trgm_ops"},
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_incident_notes_text_trgm")
        op.drop_index("ix_incidents_labels", table_name="incidents")
    op.drop_index("ix_incidents_locked_start", table_name="incidents")
    op.create_index("ix_incidents_locked", "incidents", ["evidence_locked"])
    op.drop_index("ix_incidents_score", table_name="incidents")
