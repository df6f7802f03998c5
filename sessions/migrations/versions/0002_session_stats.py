"""Cached session statistics on study_sessions (n_frames, n_face_frames, dominant_emotion, duration_s).

NULL means "not cached": sessions of an older database are computed from their observations when listed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 04:27:55.861983
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("study_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("n_frames", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("n_face_frames", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dominant_emotion", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("duration_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("study_sessions", schema=None) as batch_op:
        batch_op.drop_column("duration_s")
        batch_op.drop_column("dominant_emotion")
        batch_op.drop_column("n_face_frames")
        batch_op.drop_column("n_frames")
