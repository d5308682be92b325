"""batches table; jobs.batch_id and jobs.enqueued_at

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:00:00.000000

jobs.batch_id is an indexed column, not a foreign key: on SQLite adding a foreign key means
rebuilding the jobs table, which other tables reference. Both new job columns are nullable, so
adding them is a plain ALTER TABLE on both databases.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("total_items", sa.Integer(), nullable=False),
        sa.Column("queued_items", sa.Integer(), nullable=False),
        sa.Column("existing_items", sa.Integer(), nullable=False),
        sa.Column("rejected_items", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_batches_created_at", "batches", ["created_at"], unique=False)
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_jobs_batch_id", ["batch_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.drop_index("ix_jobs_batch_id")
        batch_op.drop_column("enqueued_at")
        batch_op.drop_column("batch_id")
    op.drop_index("ix_batches_created_at", table_name="batches")
    op.drop_table("batches")
