"""Streamlit dashboard of the FER platform: record, review and compare sessions in the browser.

Start it with ``streamlit run dashboard/app.py`` (or ``make dashboard``); settings in docs/SETTINGS.md.
"""
