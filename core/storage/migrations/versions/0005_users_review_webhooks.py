"""users, API keys, audit log, incident review fields and notes, webhooks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("assignee", sa.String(64), nullable=True))
        batch.add_column(sa.Column("false_alarm_category", sa.String(32), nullable=True))
        batch.add_column(sa.Column("updated_ts", sa.Float(), nullable=True))
    op.create_index("ix_incidents_status_start", "incidents", ["status", "start_ts"])
    op.create_index("ix_incidents_assignee_start", "incidents", ["assignee", "start_ts"])
    op.create_index(
        "ix_incidents_camera_type_start", "incidents", ["camera_id", "type", "start_ts"]
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False, server_default=""),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_ts", sa.Float(), nullable=False),
        sa.Column("last_login_ts", sa.Float(), nullable=True),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_ts", sa.Float(), nullable=False),
        sa.Column("last_used_ts", sa.Float(), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(96), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
    )
    op.create_index("ix_audit_entity", "audit_log", ["entity_type", "entity_id", "ts"])
    op.create_index("ix_audit_ts", "audit_log", ["ts"])
    op.create_table(
        "incident_notes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("author", sa.String(96), nullable=False),
        sa.Column("text", sa.String(4000), nullable=False),
    )
    op.create_index("ix_incident_notes_incident", "incident_notes", ["incident_id", "ts"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("camera_ids", sa.JSON(), nullable=False),
        sa.Column("types", sa.JSON(), nullable=False),
        sa.Column("min_severity", sa.String(16), nullable=False, server_default="low"),
        sa.Column("created_ts", sa.Float(), nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_ts", sa.Float(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(512), nullable=True),
        sa.Column("created_ts", sa.Float(), nullable=False),
        sa.Column("delivered_ts", sa.Float(), nullable=True),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_ts"]
    )
    op.create_index(
        "ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "created_ts"]
    )


def downgrade() -> None:
    for table in ("webhook_deliveries", "webhooks", "incident_notes", "audit_log"):
        op.drop_table(table)
    op.drop_table("api_keys")
    op.drop_table("users")
    for index in (
        "ix_incidents_camera_type_start",
        "ix_incidents_assignee_start",
        "ix_incidents_status_start",
    ):
        op.drop_index(index, table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        for column in ("updated_ts", "false_alarm_category", "assignee"):
            batch.drop_column(column)
