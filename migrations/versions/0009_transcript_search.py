"""search_segments and their full-text index; completed jobs indexed

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 19:00:00.000000

One row per segment of a completed job (shared/search). SQLite indexes the words in an FTS5
table whose rowid is the segment's id, kept in step by a delete trigger; PostgreSQL in two
tsvector columns with a GIN index each. The words are folded in Python (shared/search/folding.py)
on both, so no PostgreSQL extension is needed. The foreign key cascades: a deleted job takes its
segments along. Jobs completed before this revision are indexed here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.search.index import index_all

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    columns = [] if sqlite else [
        sa.Column("exact_tsv", postgresql.TSVECTOR(), nullable=False),
        sa.Column("folded_tsv", postgresql.TSVECTOR(), nullable=False),
    ]
    op.create_table(
        "search_segments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("spoken_text", sa.Text(), nullable=True),
        *columns,
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_search_segments_job_id", "search_segments", ["job_id"])
    if sqlite:
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "exact, folded, tokenize = 'unicode61 remove_diacritics 0')"
        )
        op.execute(
            "CREATE TRIGGER search_segments_ad AFTER DELETE ON search_segments BEGIN"
            " DELETE FROM search_fts WHERE rowid = old.id; END"
        )
    else:
        # A small pending list: GIN's fast update keeps new entries in a list every query
        # scans whole; at the default 4 MB a rare word took 20-70 ms instead of 5 (measured on
        # 10,000 transcripts), while without fast update each finished job paid ~2x to index.
        for column in ("exact_tsv", "folded_tsv"):
            op.create_index(
                f"ix_search_segments_{column}", "search_segments", [column],
                postgresql_using="gin", postgresql_with={"gin_pending_list_limit": 128},
            )
    index_all(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS search_segments_ad")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_segments")
