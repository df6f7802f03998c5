"""Study figures (sessions.figures): image downloads as PNG or SVG, segment bars in order with user text escaped."""

from __future__ import annotations

import pandas as pd
import pytest

from sessions import figures


def test_image_config_offers_png_and_svg_and_refuses_other_formats():
    assert figures.CHART_CONFIG["toImageButtonOptions"]["format"] == "png"
    svg = figures.image_config("svg", "curves")
    assert svg["toImageButtonOptions"] == {"format": "svg", "filename": "curves", "scale": 1}
    with pytest.raises(ValueError, match="fmt has to be 'png' or 'svg'; got 'jpeg'"):
        figures.image_config("jpeg")


def test_segment_bars_keep_segment_order_and_escape_group_names():
    table = pd.DataFrame({"segment": ["ad to end", "0-30 s", "ad to end", "0-30 s"],
                          "group": ["<b>A</b>", "<b>A</b>", "B", "B"], "n_sessions": [3, 3, 2, 2],
                          "mean": [0.4, 0.2, 0.5, 0.1], "peak": [0.8, 0.3, 0.9, 0.2],
                          "time_to_peak_s": [4.0, 1.0, 5.0, 2.0], "share_expressing": [1.0, 0.0, 0.5, 0.0]})  # fmt: skip
    fig = figures.segment_bars(table, "happy", value_range=(0.0, 1.0))
    assert [t.name for t in fig.data] == ["&lt;b&gt;A&lt;/b&gt;", "B"]
    assert list(fig.layout.xaxis.categoryarray) == ["ad to end", "0-30 s"]
    assert list(fig.data[0].y) == [0.4, 0.2] and tuple(fig.layout.yaxis.range) == (0.0, 1.0)
    with pytest.raises(ValueError, match="missing"):
        figures.segment_bars(table.drop(columns="peak"), "happy")


def test_compare_curves_takes_a_title_for_baseline_corrected_values():
    rows = pd.DataFrame({"group": "all", "time_s": [0.0, 1.0], "metric": "happy", "mean": [-0.2, 0.3],
                         "ci_low": [-0.4, 0.1], "ci_high": [0.0, 0.5], "n_sessions": 3})  # fmt: skip
    fig = figures.compare_curves(rows, "happy", value_range=(-1.0, 1.0), title="Mean happy (change from baseline)")
    assert fig.layout.title.text == "Mean happy (change from baseline)" and tuple(fig.layout.yaxis.range) == (-1, 1)
