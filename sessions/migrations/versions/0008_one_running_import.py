"""At most one running import of a video per study, model and settings (issue 16 review).

Two ``import-videos`` runs started at once could both find no import of a video and both import it. The
importer now claims a video (its session and its ``running`` row) when it plans it, and this unique partial
index on ``video_imports (study_id, content_sha256, model, settings_key) WHERE status = 'running'`` makes the
claim atomic on SQLite and PostgreSQL: the second claim fails and that run skips the video. Running rows that
would already break it (the same video claimed twice before this migration) are marked ``failed`` but the first.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.execute("UPDATE video_imports SET status = 'failed', error = 'a second concurrent import of this video' "
               "WHERE status = 'running' AND id NOT IN (SELECT MIN(id) FROM video_imports WHERE status = 'running' "
               "GROUP BY study_id, content_sha256, model, settings_key)")  # fmt: skip
    op.create_index("uq_video_imports_running", "video_imports", ["study_id", "content_sha256", "model", "settings_key"],
                    unique=True, sqlite_where=RUNNING, postgresql_where=RUNNING)  # fmt: skip


def downgrade() -> None:
    op.drop_index("uq_video_imports_running", table_name="video_imports")
