"""Batch video imports: content hash, settings and progress for idempotent, resumable imports (issue 16).

Placeholder revision (no schema change yet); filled in by the work on its issue.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
