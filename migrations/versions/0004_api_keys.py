"""api_keys table; jobs.api_key_id

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 10:00:00.000000

jobs.api_key_id names the key that submitted a job (its name, so a key rotated under the same
name keeps its jobs). It is nullable and not a foreign key: env-configured keys
(STT_API_KEYS) have no row, and on SQLite adding it stays a plain ALTER TABLE. The active-name
index is partial (WHERE revoked_at IS NULL) on both databases, so a revoked name can be reused.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("revoked_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_index("ix_api_keys_key_prefix", "api_keys", ["key_prefix"], unique=False)
    op.create_index(
        "uq_api_keys_active_name",
        "api_keys",
        ["name"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("api_key_id", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_jobs_api_key_id_created_at", ["api_key_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.drop_index("ix_jobs_api_key_id_created_at")
        batch_op.drop_column("api_key_id")
    op.drop_index("uq_api_keys_active_name", table_name="api_keys")
    op.drop_index("ix_api_keys_key_prefix", table_name="api_keys")
    op.drop_table("api_keys")
