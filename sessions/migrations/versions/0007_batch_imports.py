"""Batch video imports: content hash, model and analysis settings of each imported video (issue 16).

- ``video_imports``: one row per import of a video file into a study by ``python -m sessions import-videos`` (or
  ``reanalyse``): its source path (for re-analysis), SHA-256 and size, the model and analysis settings it was
  analysed with (``settings`` as JSON, ``settings_key`` their SHA-256), the session it made, its status
  (``running``, ``complete``, ``failed``), the reason of a failure, the live owner (process) running it, and when
  it started and finished. A video whose (study, content, model, settings) already has a ``complete`` row is
  skipped; a ``running`` row whose process is gone is redone. Deleting the session deletes its row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "video_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("settings_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("n_frames", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name=op.f("fk_video_imports_study_id_studies"),
                                ondelete="CASCADE"),  # fmt: skip
        sa.ForeignKeyConstraint(["session_id"], ["study_sessions.id"],
                                name=op.f("fk_video_imports_session_id_study_sessions"), ondelete="CASCADE"),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_imports")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_video_imports_session_id"), "video_imports", ["session_id"], unique=False)
    op.create_index("ix_video_imports_lookup", "video_imports", ["study_id", "content_sha256", "model", "settings_key"],
                    unique=False)  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_video_imports_lookup", table_name="video_imports")
    op.drop_index(op.f("ix_video_imports_session_id"), table_name="video_imports")
    op.drop_table("video_imports")
