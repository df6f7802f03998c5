"""Entry point of the dashboard: a router over the pages in ``dashboard/app_pages/``.

Who is looking decides the pages: a participant link (``?join=TOKEN``) gets exactly one page (consent
and camera); when a researcher password is set, everyone else gets the sign-in page until they give it.
Run with ``streamlit run dashboard/app.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts dashboard/, not the repository, on the path
    sys.path.insert(0, str(ROOT))

from dashboard import auth  # noqa: E402
from dashboard.resources import get_recorder, get_settings  # noqa: E402
from sessions.errors import DatabaseUnavailable  # noqa: E402

PAGES = Path(__file__).resolve().parent / "app_pages"


def main() -> None:
    """Pick the pages for this visitor and run the selected one."""
    st.set_page_config(page_title="FER dashboard", page_icon=":material/mood:", layout="wide")
    try:
        settings = get_settings()
    except ValueError as exc:
        st.error(f"The dashboard settings are invalid: {exc}. See docs/SETTINGS.md.")
        st.stop()
    try:
        # The live recorder starts with the server: on start it marks sessions a crashed server left
        # `recording` as aborted, which must happen before any session is created or joined.
        get_recorder()
    except DatabaseUnavailable as exc:
        st.error(f"The session database cannot be opened: {exc}. Check FER_DB_URL (docs/SETTINGS.md).")
        st.stop()
    if st.query_params.get("join"):
        pages = [st.Page(PAGES / "participant.py", title="Session", icon=":material/videocam:")]
        page = st.navigation(pages, position="hidden")
    elif not auth.is_researcher(settings.researcher_password):
        page = st.navigation([st.Page(lambda: auth.login_page(settings.researcher_password), title="Sign in", url_path="signin")], position="hidden")
    else:
        page = st.navigation(
            {
                "Sessions": [
                    st.Page(PAGES / "studies.py", title="Studies", icon=":material/folder:", default=True),
                    st.Page(PAGES / "record.py", title="Record", icon=":material/videocam:"),
                    st.Page(PAGES / "review.py", title="Review", icon=":material/timeline:"),
                    st.Page(PAGES / "compare.py", title="Compare", icon=":material/compare:"),
                ],
                "Data": [
                    st.Page(PAGES / "upload.py", title="Upload", icon=":material/upload:"),
                    st.Page(PAGES / "model.py", title="Model", icon=":material/model_training:"),
                ],
            }
        )
    page.run()


main()
