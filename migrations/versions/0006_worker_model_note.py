"""workers.model_note

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:00:00.000000

What a worker says of the model it serves (for the offline default: which model and its
measured quality), so /readyz and the web page can name it instead of a generic warning.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workers", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("model_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers", recreate="never") as batch_op:
        batch_op.drop_column("model_note")
