"""change notifications (SQLite's NOTIFY, polled by every server process); index of aliased variables

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_notifications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    aliased = sa.text("aliases IS NOT NULL")
    op.create_index("ix_variables_aliased", "variables", ["project_id"], sqlite_where=aliased, postgresql_where=aliased)


def downgrade() -> None:
    op.drop_index("ix_variables_aliased", table_name="variables")
    op.drop_table("change_notifications")
