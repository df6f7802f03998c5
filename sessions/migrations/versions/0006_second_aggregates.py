"""Stored per-second aggregates per session and study analysis settings (issue 15).

- new table ``second_aggregates``: one row per session and second (``sessions.aggregate.per_bin`` with 1 s
  bins: the seven mean probabilities, the dominant shares, face-present rate, valence, engagement, analysed
  frames), written when a session ends (:func:`sessions.second_aggregates.store_second_aggregates`), so that
  Compare and the study report read 3,600 rows per hour of session instead of 54,000-108,000 observations.
- ``study_sessions.aggregates_version``: the version of the aggregate definitions its stored rows follow (NULL:
  none stored yet; sessions of an older database get theirs on first read).
- ``studies.analysis_settings``: the study's analysis settings as JSON (expressing threshold, exclusion rules
  and overrides, baseline correction, segments; :class:`sessions.analysis.AnalysisSettings`), NULL for the
  defaults.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: Float columns of ``second_aggregates`` (``sessions.aggregate.BIN_COLUMNS`` without ``time_s``/``n_frames``).
_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_VALUES = (*_EMOTIONS, *(f"dominant_{e}" for e in _EMOTIONS), "face_present_rate", "valence", "engagement",
           "attention_rate")  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "second_aggregates",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("time_s", sa.Float(), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=True) for name in _VALUES),
        sa.Column("n_frames", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["study_sessions.id"],
                                name=op.f("fk_second_aggregates_session_id_study_sessions"), ondelete="CASCADE"),  # fmt: skip
        sa.PrimaryKeyConstraint("session_id", "time_s", name=op.f("pk_second_aggregates")),
    )
    with op.batch_alter_table("study_sessions") as batch_op:
        batch_op.add_column(sa.Column("aggregates_version", sa.Integer(), nullable=True))
    with op.batch_alter_table("studies") as batch_op:
        batch_op.add_column(sa.Column("analysis_settings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("studies") as batch_op:
        batch_op.drop_column("analysis_settings")
    with op.batch_alter_table("study_sessions") as batch_op:
        batch_op.drop_column("aggregates_version")
    op.drop_table("second_aggregates")
