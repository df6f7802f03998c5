"""Entry point of the dashboard: a router over the pages in ``dashboard/app_pages/``.

Who is looking decides the pages: a participant link (``?join=TOKEN``) gets exactly one page (consent
and camera); everyone else needs a signed-in account (``dashboard/auth.py``). Signed out, every
researcher page's address shows the sign-in form, so a deep link (``/review``) lands on its page after
signing in. Run with ``streamlit run dashboard/app.py``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts dashboard/, not the repository, on the path
    sys.path.insert(0, str(ROOT))

from dashboard import auth  # noqa: E402
from dashboard.camera import note_page  # noqa: E402
from dashboard.resources import get_recorder, get_settings, get_sign_in  # noqa: E402
from sessions.errors import DatabaseUnavailable  # noqa: E402

PAGES = Path(__file__).resolve().parent / "app_pages"
#: Browser-tab icon. An emoji becomes an inline ``data:`` image; a ``:material/...:`` icon would make every
#: visitor's browser fetch it from fonts.gstatic.com.
PAGE_ICON = "🙂"
#: The researcher pages by section: (file in app_pages/, title, icon); the first is the default page.
RESEARCHER_PAGES: dict[str, list[tuple[str, str, str]]] = {
    "Sessions": [
        ("studies.py", "Studies", ":material/folder:"),
        ("record.py", "Record", ":material/videocam:"),
        ("review.py", "Review", ":material/timeline:"),
        ("compare.py", "Compare", ":material/compare:"),
    ],
    "Data": [
        ("upload.py", "Upload", ":material/upload:"),
        ("model.py", "Model", ":material/model_training:"),
    ],
}
_LOG = logging.getLogger(__name__)


def researcher_pages() -> dict[str, list[st.Page]]:
    """The researcher pages for a signed-in visitor (or with ``FER_AUTH=none``)."""
    return {section: [st.Page(PAGES / file, title=title, icon=icon, default=(section, i) == ("Sessions", 0))
                      for i, (file, title, icon) in enumerate(specs)] for section, specs in RESEARCHER_PAGES.items()}  # fmt: skip


def sign_in_pages(render) -> list[st.Page]:
    """One sign-in page under each researcher page's address (same ``url_path``, hence the same page hash).

    After signing in, the rerun resolves that hash to the real page: no "Page not found", and the visitor
    is where the link pointed.
    """
    stems = [Path(file).stem for section in RESEARCHER_PAGES.values() for file, _, _ in section]
    # The default page lives at "/"; its file name (``/studies``) gets a form too, so that link shows no
    # "Page not found" either (after signing in it opens the default page).
    return [st.Page(render, title="Sign in", default=True, url_path="signin"),
            *(st.Page(render, title="Sign in", url_path=stem) for stem in stems)]  # fmt: skip


def main() -> None:
    """Pick the pages for this visitor and run the selected one."""
    st.set_page_config(page_title="FER dashboard", page_icon=PAGE_ICON, layout="wide")
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
    else:
        page = _researcher_navigation(settings)
    auth.apply_cookie_action()
    note_page(page.url_path)
    page.run()


def _researcher_navigation(settings):
    """Navigation of a visitor without a participant link: the pages if signed in, else the sign-in form."""
    try:
        if not auth.required(settings):
            return st.navigation(researcher_pages())
        sign_in = get_sign_in()
        name = auth.signed_in(sign_in)
    except ValueError as exc:  # FER_AUTH=none on a public address, or an account file not in its layout
        st.error(f"The dashboard cannot start its pages: {exc}. See docs/SETTINGS.md.")
        st.stop()
    except OSError as exc:
        _LOG.error("the account file cannot be used: %s", exc)
        st.error(f"The account file cannot be read or written ({exc.__class__.__name__}); see the server log.")
        st.stop()
    if name is None:
        return st.navigation(sign_in_pages(lambda: auth.sign_in_page(sign_in)), position="hidden")
    page = st.navigation(researcher_pages())
    auth.sign_out_button(sign_in, name)
    return page


main()
