"""workers.formatting

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 18:40:00.000000

Whether a worker writes transcripts as written Vietnamese (punctuation, capitals, numbers) and
with which models, or why it serves the spoken form only: /readyz shows it, so an operator sees
a formatting model that failed to load instead of finding lowercase transcripts later.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workers", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("formatting", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers", recreate="never") as batch_op:
        batch_op.drop_column("formatting")
