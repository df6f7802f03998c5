"""Stored per-second aggregates per session and study analysis settings (issue 15).

Placeholder revision (no schema change yet); filled in by the work on its issue.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
