"""Model: the card of the model in use (accuracy, per-class figures, confusion matrix, training curves).

When live streams use another model than offline analysis (the ``live_model_path`` setting), a choice shows either.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.model_card import card_files, card_parts, figure_name, figure_tables, split_metrics
from dashboard.resources import get_settings
from dashboard.text import escape_markdown
from fer_core.classifier import model_file_id
from fer_core.model_file import ModelFileError, read_metadata

st.title("Model")
settings = get_settings()
path = settings.resolved_model_path
if settings.resolved_live_model_path != path:
    uses = {"Offline analysis (Upload)": path, "Live camera streams": settings.resolved_live_model_path}
    use = st.radio("Model of", list(uses), horizontal=True, key="model_use",
                   help="Live streams and uploaded videos are analysed with different models (FER_LIVE_MODEL_PATH); "
                   "each session stores the model that analysed it.")  # fmt: skip
    path = uses[use]
try:
    metadata = read_metadata(path)
except ModelFileError as exc:
    st.warning(
        f"No usable model file yet: {escape_markdown(exc)}. Train and export one (`python -m training train`, then "
        "`python -m training export`) or point FER_MODEL_PATH at a .keras model file; see docs/SETTINGS.md."
    )
    metadata = None

if metadata is not None:
    # The file's name and digest, as each session records its model (no server path on the page).
    st.caption(f"Model file: {escape_markdown(model_file_id(path))}")
    parts = split_metrics(metadata.get("metrics", {}))
    headline, evaluations = figure_tables(parts.scalars)
    if headline:
        cols = st.columns(min(4, len(headline)))
        for i, (name, value) in enumerate(headline.items()):
            cols[i % len(cols)].metric(escape_markdown(name), value)
    if evaluations:
        st.dataframe(evaluations, hide_index=True, key="model_figures")
        st.caption("Accuracy: share of images whose top class is the true one; macro F1: the mean over the seven "
                   "classes of the harmonic mean of precision and recall.")  # fmt: skip
    if parts.per_class:
        named = {c: {figure_name(k): v for k, v in figs.items()} for c, figs in parts.per_class.items()}
        st.plotly_chart(charts.per_class_bars(named), key="model_per_class")
    if parts.confusion is not None:
        st.plotly_chart(charts.confusion_matrix(parts.confusion), key="model_confusion")
    if parts.history:
        st.plotly_chart(charts.training_curves(parts.history), key="model_history")
    with st.expander("Full metadata"):
        st.json(metadata)

card, images = card_files(path)
for part in card_parts(card, images):  # the card's text with each of its images once, where the card puts it
    if part.kind == "image":
        st.image(str(part.path), caption=part.text)
    else:
        st.markdown(part.text)
