"""Per-study consent text and version, participant links in bulk, completion URL, attention per frame (issue 13).

Placeholder revision (no schema change yet); filled in by the work on its issue.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
