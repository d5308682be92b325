"""workers.compute

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:50:00.000000

Where a worker's model runs and at what precision, and whether that was measured on its CPU,
set or read from an earlier measurement: /readyz shows it so an operator can see which fast
path each machine took.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workers", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("compute", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers", recreate="never") as batch_op:
        batch_op.drop_column("compute")
