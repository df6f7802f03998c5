"""Session lifecycle: pending status, one claimed live stream per session, owner heartbeats, resumable gaps,
skipped and refused frames kept apart, ids never reused on SQLite.

- ``study_sessions``: ``created_at`` (from ``started_at``), ``started_at`` nullable (the camera's first frame;
  NULL while ``pending``), ``end_reason``, ``owner_id``, ``stream_id``, ``stream_role``, ``stream_since``,
  ``disconnected_at``, ``skipped_frames``, ``model``, ``latency_p50_ms``, ``latency_p90_ms``; ``dropped_frames`` (which only ever counted the recorder queue's
  refusals) renamed ``refused_frames``. Sessions left ``recording`` without any observation become ``pending``.
- new tables ``session_gaps`` and ``live_owners``.
- SQLite: ``studies``, ``study_sessions`` and ``markers`` are rebuilt with ``AUTOINCREMENT`` so that an id is
  never handed out twice after a delete (PostgreSQL's sequences never reuse one).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def upgrade() -> None:
    sqlite = _sqlite()
    batch = {"recreate": "always", "table_kwargs": {"sqlite_autoincrement": True}} if sqlite else {}
    with op.batch_alter_table("study_sessions", **batch) as batch_op:
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("end_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("owner_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("stream_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("stream_role", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("stream_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("skipped_frames", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("model", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("latency_p50_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("latency_p90_ms", sa.Float(), nullable=True))
        batch_op.alter_column("dropped_frames", new_column_name="refused_frames", existing_type=sa.Integer(),
                              existing_nullable=False)  # fmt: skip
        batch_op.alter_column("started_at", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.create_index(batch_op.f("ix_study_sessions_owner_id"), ["owner_id"], unique=False)
    op.execute("UPDATE study_sessions SET created_at = started_at")
    op.execute(
        "UPDATE study_sessions SET status = 'pending', started_at = NULL WHERE status = 'recording' AND NOT EXISTS "
        "(SELECT 1 FROM observations WHERE observations.session_id = study_sessions.id)"
    )
    with op.batch_alter_table("study_sessions", **batch) as batch_op:
        batch_op.alter_column("created_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    if sqlite:
        for table in ("studies", "markers"):
            with op.batch_alter_table(table, **batch):
                pass
    op.create_table(
        "session_gaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["study_sessions.id"], name=op.f("fk_session_gaps_session_id_study_sessions"),
                                ondelete="CASCADE"),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_gaps")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_session_gaps_session_id"), "session_gaps", ["session_id"], unique=False)
    op.create_table(
        "live_owners",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_owners")),
    )


def downgrade() -> None:
    op.drop_table("live_owners")
    op.drop_index(op.f("ix_session_gaps_session_id"), table_name="session_gaps")
    op.drop_table("session_gaps")
    op.execute("UPDATE study_sessions SET status = 'recording', started_at = created_at WHERE status = 'pending'")
    op.execute("UPDATE study_sessions SET started_at = created_at WHERE started_at IS NULL")
    with op.batch_alter_table("study_sessions") as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_sessions_owner_id"))
        batch_op.alter_column("started_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column("refused_frames", new_column_name="dropped_frames", existing_type=sa.Integer(),
                              existing_nullable=False)  # fmt: skip
        for name in ("latency_p90_ms", "latency_p50_ms", "model", "skipped_frames", "disconnected_at", "stream_since", "stream_role", "stream_id", "owner_id",
                     "end_reason", "created_at"):  # fmt: skip
            batch_op.drop_column(name)
