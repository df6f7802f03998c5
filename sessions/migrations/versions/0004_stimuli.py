"""Stimuli of a study, their sequence, each session's drawn order, playback events (issue 13).

- ``stimuli``: a study's video files (kept in the media folder, named by their SHA-256) or external tasks
  (a URL; timing from markers), with what PyAV read at upload (duration, frame rate, size, thumbnails).
- ``stimulus_sequences``: one per study: fixed or randomised order, blank buffer between stimuli.
- ``session_stimuli``: the order a session plays (drawn once per participant), with each stimulus's name
  and duration kept when the stimulus itself is deleted.
- ``playback_events``: what the player reported (play, pause, waiting, seeking, ended...), with the media
  time, the browser's clocks and the server's receive time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stimuli",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("file_name", sa.String(length=200), nullable=True),
        sa.Column("mime_type", sa.String(length=50), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("has_audio", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("n_thumbnails", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("in_sequence", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name=op.f("fk_stimuli_study_id_studies"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stimuli")),
        sa.UniqueConstraint("study_id", "name", name=op.f("uq_stimuli_study_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_stimuli_study_id"), "stimuli", ["study_id"], unique=False)
    op.create_table(
        "stimulus_sequences",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("order", sa.String(length=20), nullable=False, server_default="fixed"),
        sa.Column("buffer_s", sa.Float(), nullable=False, server_default="5.0"),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name=op.f("fk_stimulus_sequences_study_id_studies"),
                                ondelete="CASCADE"),  # fmt: skip
        sa.PrimaryKeyConstraint("study_id", name=op.f("pk_stimulus_sequences")),
    )
    op.create_table(
        "session_stimuli",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("stimulus_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("buffer_s", sa.Float(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["session_id"], ["study_sessions.id"], name=op.f("fk_session_stimuli_session_id_study_sessions"),
                                ondelete="CASCADE"),  # fmt: skip
        sa.ForeignKeyConstraint(["stimulus_id"], ["stimuli.id"], name=op.f("fk_session_stimuli_stimulus_id_stimuli"),
                                ondelete="SET NULL"),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_stimuli")),
        sa.UniqueConstraint("session_id", "position", name=op.f("uq_session_stimuli_session_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "playback_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("stimulus_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("media_time_s", sa.Float(), nullable=True),
        sa.Column("client_ms", sa.Float(), nullable=False),
        sa.Column("perf_ms", sa.Float(), nullable=True),
        sa.Column("offset_ms", sa.Float(), nullable=True),
        sa.Column("page_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["study_sessions.id"], name=op.f("fk_playback_events_session_id_study_sessions"),
                                ondelete="CASCADE"),  # fmt: skip
        sa.ForeignKeyConstraint(["stimulus_id"], ["stimuli.id"], name=op.f("fk_playback_events_stimulus_id_stimuli"),
                                ondelete="SET NULL"),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playback_events")),
        sa.UniqueConstraint("session_id", "page_id", "seq", name=op.f("uq_playback_events_session_id")),
    )


def downgrade() -> None:
    op.drop_table("playback_events")
    op.drop_table("session_stimuli")
    op.drop_table("stimulus_sequences")
    op.drop_index(op.f("ix_stimuli_study_id"), table_name="stimuli")
    op.drop_table("stimuli")
