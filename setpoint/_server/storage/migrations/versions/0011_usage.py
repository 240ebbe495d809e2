"""usage counts, reporting instances and code references

Revision ID: 0011
Revises: 0005
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0005"
branch_labels = None
depends_on = None


def _project_fk() -> sa.Column[int]:
    return sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "usage_counts",
        sa.Column("id", sa.Integer, primary_key=True),
        _project_fk(),
        sa.Column("variable", sa.String(200), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("granularity", sa.String(4), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "project_id",
            "variable",
            "label",
            "version",
            "reason",
            "granularity",
            "bucket_start",
            name="uq_usage_counts_key",
        ),
    )
    op.create_index("ix_usage_counts_bucket", "usage_counts", ["granularity", "bucket_start"])
    op.create_table(
        "usage_instances",
        sa.Column("id", sa.Integer, primary_key=True),
        _project_fk(),
        sa.Column("variable", sa.String(200), nullable=False),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("sdk", sa.String(100), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "variable", "instance_id", name="uq_usage_instances_key"),
    )
    op.create_table(
        "code_refs",
        sa.Column("id", sa.Integer, primary_key=True),
        _project_fk(),
        sa.Column("repository", sa.String(300), nullable=False),
        sa.Column("variable", sa.String(200), nullable=True),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("call", sa.String(100), nullable=False),
        sa.Column("commit_sha", sa.String(100), nullable=True),
        sa.Column("branch", sa.String(300), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_code_refs_project_repository", "code_refs", ["project_id", "repository"])


def downgrade() -> None:
    op.drop_table("code_refs")
    op.drop_table("usage_instances")
    op.drop_index("ix_usage_counts_bucket", table_name="usage_counts")
    op.drop_table("usage_counts")
