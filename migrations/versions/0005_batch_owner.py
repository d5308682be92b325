"""batches.api_key_id

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:30:00.000000

A batch belongs to the API key that submitted it, like its jobs (0004): with keys configured,
GET /v1/batches/{id} answers only its owner. Nullable (CLI backfills and an open API have no
owner), not a foreign key, for the same reasons as jobs.api_key_id.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batches", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("api_key_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches", recreate="never") as batch_op:
        batch_op.drop_column("api_key_id")
