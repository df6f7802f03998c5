"""Stimuli of a study, playback events and stimulus time (issue 13).

Placeholder revision (no schema change yet); filled in by the work on its issue.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
