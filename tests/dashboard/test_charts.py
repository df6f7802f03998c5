"""Charts: pure functions of tables, checked on what they draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import charts
from dashboard.model_card import split_metrics
from fer_core.emotions import EMOTIONS


def bins_table(n: int = 5) -> pd.DataFrame:
    probs = np.full((n, 7), 0.05)
    probs[:, EMOTIONS.index("happy")] = np.linspace(0.1, 0.7, n)
    probs[:2, EMOTIONS.index("neutral")] = 0.8
    table = pd.DataFrame(probs, columns=list(EMOTIONS))
    table.insert(0, "time_s", np.arange(n, dtype=float))
    table["valence"] = table["happy"] - table[["angry", "disgust", "fear", "sad"]].sum(axis=1)
    table["engagement"] = 1 - table["neutral"]
    return table


def comparison_table() -> pd.DataFrame:
    rows = []
    for group, level in (("variant=A", 0.6), ("variant=B", 0.2)):
        for metric in (*EMOTIONS, "valence"):
            for t in range(3):
                mean = level if metric == "happy" else 0.1
                rows.append(dict(group=group, time_s=float(t), metric=metric, mean=mean, ci_low=mean - 0.05, ci_high=mean + 0.05,
                                 n_sessions=2, share_expressing=1.0 if mean > 0.5 else 0.0))  # fmt: skip
    return pd.DataFrame(rows)


def test_emotion_bars_show_probabilities_in_emotion_order():
    probs = np.array([0.0, 0.0, 0.1, 0.7, 0.0, 0.1, 0.1])
    fig = charts.emotion_bars(probs)
    assert list(fig.data[0].y) == list(EMOTIONS)
    assert list(fig.data[0].x) == pytest.approx(probs)
    assert "no face" in charts.emotion_bars(None).layout.title.text
    with pytest.raises(ValueError, match="has to have 7 values"):
        charts.emotion_bars(np.ones(3))


def test_emotion_lines_draw_one_line_per_emotion_and_markers():
    markers = pd.DataFrame({"time_s": [1.0, 3.0], "label": ["stimulus start", "ad break"], "note": ["", ""]})
    fig = charts.emotion_lines(bins_table(), markers)
    assert [t.name for t in fig.data] == list(EMOTIONS)
    assert [s.x0 for s in fig.layout.shapes] == [1.0, 3.0]
    assert [a.text for a in fig.layout.annotations] == ["stimulus start", "ad break"]
    with pytest.raises(ValueError, match="missing \\['happy'\\]"):
        charts.emotion_lines(bins_table().drop(columns="happy"))


def test_dominant_ribbon_codes_each_bin_and_blanks_empty_bins():
    table = bins_table()
    table.loc[4, list(EMOTIONS)] = np.nan  # a bin without a face
    fig = charts.dominant_ribbon(table)
    codes = list(fig.data[0].z[0])
    assert codes[:4] == [EMOTIONS.index("neutral")] * 2 + [EMOTIONS.index("happy")] * 2
    assert np.isnan(codes[4]) and fig.data[0].customdata[0][4] == "no face"


def test_valence_engagement_lines():
    fig = charts.valence_engagement(bins_table())
    assert [t.name for t in fig.data] == ["valence", "engagement"]
    assert fig.data[1].y[-1] == pytest.approx(0.95)


def test_compare_curves_band_and_mean_per_group():
    fig = charts.compare_curves(comparison_table(), "happy")
    names = [t.name for t in fig.data]
    assert names == ["variant=A 95% band", "variant=A", "variant=B 95% band", "variant=B"]
    assert list(fig.data[1].y) == [0.6] * 3
    assert list(fig.data[0].y) == pytest.approx([0.65] * 3 + [0.55] * 3)  # upper edge out, lower edge back
    assert list(fig.data[1].customdata) == [2, 2, 2]  # sessions per bin, on hover
    with pytest.raises(ValueError, match="metric has to be one of"):
        charts.compare_curves(comparison_table(), "boredom")


def test_compare_curves_clip_bands_fix_the_axis_and_leave_gaps_without_a_band():
    table = comparison_table()
    valence = table["metric"] == "valence"
    table.loc[valence, "mean"] = 0.9
    table.loc[valence, ["ci_low", "ci_high"]] = [-11.3, 11.2]  # a Student-t band over 2 sessions
    fig = charts.compare_curves(table, "valence", value_range=(-1.0, 1.0))
    assert tuple(fig.layout.yaxis.range) == (-1.0, 1.0)
    bands = [t for t in fig.data if t.name.endswith("95% band")]
    assert all(min(t.y) >= -1.0 and max(t.y) <= 1.0 for t in bands)
    # no band where ci is NaN: bins 0 and 2 of group A make two separate polygons, none over bin 1
    table.loc[valence & (table["group"] == "variant=A") & (table["time_s"] == 1.0), ["ci_low", "ci_high"]] = np.nan
    table["n_low_frames"] = 0
    table.loc[valence & (table["time_s"] == 2.0), "n_low_frames"] = 1
    fig = charts.compare_curves(table, "valence", value_range=(-1.0, 1.0))
    a_bands = [list(t.x) for t in fig.data if t.name == "variant=A 95% band"]
    assert a_bands == [[0.0, 0.0], [2.0, 2.0]]
    flagged = [t for t in fig.data if "left out" in t.name]
    assert len(flagged) == 2 and list(flagged[0].x) == [2.0] and list(flagged[0].y) == [-1.0]


def test_share_expressing_and_emotion_means():
    share = charts.share_expressing(comparison_table(), "happy")
    assert [list(t.y) for t in share.data] == [[1.0] * 3, [0.0] * 3]
    assert tuple(share.layout.yaxis.range) == (0, 1)
    valence = charts.share_expressing(comparison_table(), "valence", definition="share with positive valence")
    assert "positive valence" in valence.layout.title.text and valence.layout.yaxis.title.text == "share of sessions"
    means = pd.DataFrame({"group": ["A"] * 7 + ["B"] * 7, "metric": list(EMOTIONS) * 2, "mean": [0.1] * 14,
                          "ci_low": [0.05] * 14, "ci_high": [1.3] * 14, "n_sessions": [3] * 14})  # fmt: skip
    means.loc[EMOTIONS.index("happy"), "mean"] = 0.6
    fig = charts.emotion_means(means)
    assert [t.name for t in fig.data] == ["A", "B"]
    assert fig.data[0].y[EMOTIONS.index("happy")] == pytest.approx(0.6)
    assert list(fig.data[0].x) == list(EMOTIONS)
    assert fig.data[1].error_y.array[0] == pytest.approx(0.9)  # band clipped at 1
    assert tuple(fig.layout.yaxis.range) == (0, 1)


def test_confusion_matrix_is_row_normalised():
    counts = np.eye(7) * 8 + 1
    fig = charts.confusion_matrix(counts)
    assert np.asarray(fig.data[0].z).sum(axis=1) == pytest.approx(np.ones(7))
    with pytest.raises(ValueError, match="has to be 7x7"):
        charts.confusion_matrix(np.ones((2, 2)))


def test_training_curves_and_per_class_bars():
    fig = charts.training_curves({"loss": [1.0, 0.8], "val_accuracy": [0.4, 0.5]})
    assert [t.name for t in fig.data] == ["loss", "val_accuracy"] and list(fig.data[0].x) == [1, 2]
    with pytest.raises(ValueError, match="at least one metric"):
        charts.training_curves({})
    bars = charts.per_class_bars({e: {"precision": 0.5, "recall": 0.4} for e in EMOTIONS})
    assert [t.name for t in bars.data] == ["precision", "recall"]


def test_split_metrics_reads_the_training_export_layout():
    per_class = {e: {"precision": 0.5, "recall": 0.6, "f1": 0.55, "support": 10} for e in EMOTIONS}
    # the layout training.export.export_run writes (see fer_core/models/fer2013_cnn.keras's metadata)
    summary = {"accuracy": 0.64, "macro_f1": 0.57, "n": 3579}
    parts = split_metrics({"PublicTest_accuracy": 0.64, "all": summary, "all_tta": {**summary, "accuracy": 0.645},
                           "no_overlap": {**summary, "n": 3300}, "n_overlap_with_Training": 279,
                           "per_class": per_class, "confusion_matrix": np.eye(7, dtype=int).tolist()})  # fmt: skip
    assert parts.scalars["PublicTest_accuracy"] == 0.64 and parts.scalars["all_tta/accuracy"] == 0.645
    assert parts.scalars["no_overlap/n"] == 3300 and parts.scalars["n_overlap_with_Training"] == 279
    assert set(parts.scalars) == {"PublicTest_accuracy", "n_overlap_with_Training",
                                  *(f"{part}/{key}" for part in ("all", "all_tta", "no_overlap")
                                    for key in ("accuracy", "macro_f1", "n"))}
    assert parts.per_class["happy"] == {"precision": 0.5, "recall": 0.6, "f1": 0.55}
    assert parts.confusion == np.eye(7, dtype=int).tolist()


def test_emotion_bars_html_widths_follow_probabilities_in_emotion_order():
    import re

    probs = np.array([0.05, 0.0, 0.05, 0.7, 0.1, 0.05, 0.05])
    html = charts.emotion_bars_html(probs)
    labels = re.findall(r'text-align:right">(\w+)</span>', html)
    widths = [float(w) for w in re.findall(r"width:([\d.]+)%", html)]
    assert labels == list(EMOTIONS)
    assert widths == pytest.approx(list(probs * 100))
    assert charts.EMOTION_COLORS["happy"] in html and "Current emotion" in html
    assert "no face" in charts.emotion_bars_html(None)
    with pytest.raises(ValueError, match="7 values"):
        charts.emotion_bars_html(np.ones(3))


def test_bin_means_averages_frames_into_half_second_bins():
    frames = pd.DataFrame({"time_s": [0.0, 0.2, 0.49, 0.5, 1.7], "happy": [0.1, 0.2, 0.3, 0.9, 0.4]})
    binned = charts.bin_means(frames, width_s=0.5)
    assert binned["time_s"].tolist() == [0.0, 0.5, 1.5]
    np.testing.assert_allclose(binned["happy"], [0.2, 0.9, 0.4])
    assert charts.bin_means(frames.iloc[:0]).empty
    with pytest.raises(ValueError, match="width_s"):
        charts.bin_means(frames, width_s=0)


def test_gaps_are_shaded_on_the_timeline():
    import pandas as pd

    from dashboard import charts

    table = pd.DataFrame({"time_s": [0.0, 1.0, 5.0], **{e: [0.1, 0.2, 0.3] for e in EMOTIONS}})
    gaps = pd.DataFrame({"start_s": [1.0], "end_s": [4.5]})
    fig = charts.emotion_lines(table, gaps=gaps)
    shapes = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(shapes) == 1 and (shapes[0].x0, shapes[0].x1) == (1.0, 4.5)
    assert any(a.text == "no camera" for a in fig.layout.annotations)
    assert not [s for s in charts.emotion_lines(table).layout.shapes if s.type == "rect"]


def test_attention_line_shows_shares_and_leaves_unknown_seconds_empty():
    bins = pd.DataFrame({"time_s": [0.0, 1.0, 2.0], "attention_rate": [1.0, np.nan, 0.25]})
    fig = charts.attention_line(bins)
    (trace,) = fig.data
    assert list(trace.x) == [0.0, 1.0, 2.0] and trace.y[0] == 1.0 and np.isnan(trace.y[1])
    assert fig.layout.yaxis.range == (0, 1.05) and fig.layout.yaxis.tickformat == ".0%"
    with pytest.raises(ValueError, match="attention_rate"):
        charts.attention_line(bins.drop(columns="attention_rate"))
