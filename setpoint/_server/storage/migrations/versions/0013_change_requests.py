"""change requests (four-eyes review): review settings, requests, comments

Revision ID: 0013
Revises: 0015
Create Date: 2026-11-30 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0015"
branch_labels = None
depends_on = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "review_settings",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("protected_labels", sa.Boolean, nullable=False),
        sa.Column("all_targeting", sa.Boolean, nullable=False),
        sa.Column("approver_role", sa.String(20), nullable=False),
        sa.Column("admins_bypass", sa.Boolean, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "change_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("variable", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("base_revision", sa.Integer, nullable=False),
        sa.Column("diff", sa.Text, nullable=False),
        sa.Column("bypassed", sa.Boolean, nullable=False, server_default=sa.false()),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("reviewed_by", sa.String(200), nullable=True),
        _ts("reviewed_at", nullable=True),
        sa.Column("applied_by", sa.String(200), nullable=True),
        _ts("applied_at", nullable=True),
    )
    op.create_index("ix_change_requests_project_state", "change_requests", ["project_id", "state"])
    op.create_table(
        "change_request_comments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("change_requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        _ts("created_at"),
    )
    op.create_index("ix_change_request_comments_request_id", "change_request_comments", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_change_request_comments_request_id", table_name="change_request_comments")
    op.drop_table("change_request_comments")
    op.drop_index("ix_change_requests_project_state", table_name="change_requests")
    op.drop_table("change_requests")
    op.drop_table("review_settings")
