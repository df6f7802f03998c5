"""Fieldwork (per-study consent text with versions, completion URL) and attention per frame (issue 13).

- new table ``consent_texts``: a study's consent text (purpose, who holds the data, how long it is kept,
  contact, how to withdraw), one row per version (1, 2, ...; editing adds a version, none is changed).
- ``studies.completion_url``: where a participant who finishes is sent (``{code}``: the participant code).
- ``study_sessions.consent_version`` (the version of the study's consent text that was agreed to; NULL: the
  platform's generic text) and ``consent_source`` (who recorded the consent: ``participant``, ``researcher``,
  ``uploader``), beside the existing ``consent_at``.
- ``observations.yaw_deg``, ``pitch_deg`` (head angles, degrees) and ``attentive`` (face turned to the screen):
  NULL on rows stored before, and where the detector gives no keypoints.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_texts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("controller", sa.Text(), nullable=False),
        sa.Column("retention", sa.Text(), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("withdrawal", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name=op.f("fk_consent_texts_study_id_studies"),
                                ondelete="CASCADE"),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_texts")),
        sa.UniqueConstraint("study_id", "version", name=op.f("uq_consent_texts_study_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("studies") as batch_op:
        batch_op.add_column(sa.Column("completion_url", sa.Text(), nullable=True))
    with op.batch_alter_table("study_sessions") as batch_op:
        batch_op.add_column(sa.Column("consent_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("consent_source", sa.String(length=20), nullable=True))
    with op.batch_alter_table("observations") as batch_op:
        batch_op.add_column(sa.Column("yaw_deg", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("pitch_deg", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("attentive", sa.Boolean(), nullable=True))


def downgrade() -> None:
    keep_ids = {"table_kwargs": {"sqlite_autoincrement": True}}  # SQLite rebuilds the table to drop a column
    with op.batch_alter_table("observations") as batch_op:
        batch_op.drop_column("attentive")
        batch_op.drop_column("pitch_deg")
        batch_op.drop_column("yaw_deg")
    with op.batch_alter_table("study_sessions", **keep_ids) as batch_op:
        batch_op.drop_column("consent_source")
        batch_op.drop_column("consent_version")
    with op.batch_alter_table("studies", **keep_ids) as batch_op:
        batch_op.drop_column("completion_url")
    op.drop_table("consent_texts")
