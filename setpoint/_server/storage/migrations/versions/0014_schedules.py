"""scheduled changes and progressive rollouts

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-30 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def _project_fk() -> sa.Column[int]:
    return sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "progressive_rollouts",
        sa.Column("id", sa.Integer, primary_key=True),
        _project_fk(),
        sa.Column("variable", sa.String(200), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("start_weight", sa.Float, nullable=False),
        sa.Column("target_weight", sa.Float, nullable=False),
        sa.Column("steps", sa.Integer, nullable=False),
        sa.Column("interval_seconds", sa.Integer, nullable=False),
        sa.Column("next_step", sa.Integer, nullable=False),
        sa.Column("weight", sa.Float, nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_index("ix_progressive_rollouts_project_id", "progressive_rollouts", ["project_id", "variable"])
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer, primary_key=True),
        _project_fk(),
        sa.Column("variable", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        _ts("due_at"),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("ran_at", nullable=True),
        sa.Column("late_seconds", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column(
            "rollout_id", sa.Integer, sa.ForeignKey("progressive_rollouts.id", ondelete="CASCADE"), nullable=True
        ),
    )
    op.create_index("ix_schedules_state", "schedules", ["state", "due_at"])
    op.create_index("ix_schedules_project_id", "schedules", ["project_id", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_schedules_project_id", table_name="schedules")
    op.drop_index("ix_schedules_state", table_name="schedules")
    op.drop_table("schedules")
    op.drop_index("ix_progressive_rollouts_project_id", table_name="progressive_rollouts")
    op.drop_table("progressive_rollouts")
