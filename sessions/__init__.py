"""sessions: studies, participant sessions and their observations.

Storage (``db``, ``models``, ``repository``, Alembic ``migrations``), the live recorder (``recorder``),
aggregation and comparison (``aggregate``), exports (``exports``), offline video import (``importer``) and
the CLI ``python -m sessions``. Depends on ``fer_core``; knows nothing of Streamlit.
"""
