"""``python -m sessions report``: one self-contained HTML file with the study's charts, tables and notes."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import insert

from sessions import lifecycle
from sessions import repository as repo
from sessions.__main__ import main
from sessions.analysis import AnalysisSettings, Baseline, save_settings
from sessions.db import get_engine, session_scope
from sessions.models import Observation
from tests.sessions.test_playback import two_ad_study  # noqa: F401 - fixture
from tests.sessions.test_second_aggregates import _rows

STUDY = "Ad <b>test</b>"


def make_study(url: str, *, baseline: bool = False) -> list[int]:
    """Six complete sessions (variant A/B, an 'ad' marker at 5 s) and one aborted one."""
    engine = get_engine(url)
    ids = []
    with session_scope(engine) as db:
        study = repo.create_study(db, STUDY)
        for k in range(7):
            session = repo.create_session(db, study_id=study.id, participant_code=f"P<{k}>",
                                          tags={"variant": "AB"[k % 2]})  # fmt: skip
            lifecycle.start_session(db, session.id, session.created_at, model="cnn.keras@0a1b <x>")
            db.execute(insert(Observation), _rows(session.id, 20, 10, k))
            repo.add_marker(db, session.id, 5.0, "ad")
            lifecycle.end_session(db, session.id, "aborted" if k == 6 else "complete")
            ids.append(session.id)
        if baseline:
            save_settings(db, study.id, AnalysisSettings(baseline=Baseline(seconds=5), cut_points=(10,)))
    engine.dispose()
    return ids


def test_report_writes_one_self_contained_html_file(sqlite_url, tmp_path, capsys):
    ids = make_study(sqlite_url)
    out = tmp_path / "report.html"
    assert main(["report", STUDY, "--db", sqlite_url, "--out", str(out), "--group-tag", "variant"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert text.count("Copyright 2012-") == 1  # plotly.js inlined once
    assert "<script src" not in text and "<link" not in text and "<img" not in text  # nothing loaded from elsewhere
    charts = re.findall(r'class="plotly-graph-div"', text)
    assert len(charts) >= 3 * 3  # curves, share, means (and segments) for each of the three default metrics
    assert "Ad &lt;b&gt;test&lt;/b&gt;" in text and "<b>test</b>" not in text  # user text escaped
    assert "Sessions left out" in text and f"<td>{ids[-1]}</td>" in text and "aborted" in text
    assert "Welch" in text and "Hedges" in text and "Segments" in text and "No baseline correction" in text
    assert "variant=A" in text and "variant=B" in text
    assert 'onclick="ferDownload(&quot;chart-0-curves&quot;, &quot;svg&quot;)"' in text  # PNG and SVG buttons under each chart
    from fer_core.classifier import default_model_path
    from fer_core.model_file import read_metadata

    assert default_model_path().is_file(), "the shipped model is part of the repository"
    metrics = read_metadata(default_model_path())["metrics"]  # the report describes the shipped model
    assert f"<td>PublicTest, all images</td>\n      <td>{metrics['all']['n']}</td>\n      " \
           f"<td>{100 * metrics['all']['accuracy']:.1f}%</td>" in text
    per_class = text[text.index("<h3>Per class</h3>"):]
    header = re.findall(r"<th>([^<]*)</th>", per_class[: per_class.index("</thead>")])
    assert header == ["class", "precision", "recall", "F1", "images"]  # words, not the metadata's keys
    happy = metrics["per_class"]["happy"]
    assert (f"<td>happy</td>\n      <td>{happy['precision']:.3f}</td>\n      <td>{happy['recall']:.3f}</td>\n"
            f"      <td>{happy['f1']:.3f}</td>\n      <td>{happy['support']}</td>") in per_class
    assert "Sessions analysed by: cnn.keras@0a1b &lt;x&gt;." in text  # the model each session recorded


def test_report_notes_the_studys_baseline_and_segments(sqlite_url, tmp_path):
    make_study(sqlite_url, baseline=True)
    out = tmp_path / "report.html"
    assert main(["report", STUDY, "--db", sqlite_url, "--out", str(out), "--metric", "happy"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "baseline-corrected: each session&#x27;s mean over the first 5 s of the session subtracted" in text
    assert "0-10 s" in text and "10-20 s" in text and "change from baseline" in text


@pytest.mark.parametrize(("args", "message"), [
    (["report", "No such study", "--out", "{out}"], "no study is named 'No such study'"),
    (["report", STUDY, "--out", "{out}", "--metric", "joy"], "metric has to be one of"),
    (["report", STUDY, "--out", "{dir}/report.pdf"], "--out has to be an .html file"),
    (["report", STUDY, "--out", "{dir}/missing/report.html"], "No such file or directory"),
])  # fmt: skip
def test_report_errors_are_one_line_without_a_traceback(sqlite_url, tmp_path, capsys, args, message):
    make_study(sqlite_url)
    argv = [a.format(out=tmp_path / "r.html", dir=tmp_path) for a in args] + ["--db", sqlite_url]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_report_aligns_on_a_stimulus_as_the_compare_page_does(engine, two_ad_study, tmp_path, capsys):  # noqa: F811
    from tests.sessions.test_playback import _played_session

    for code, start_s in (("early", 3.0), ("late", 40.0)):
        _played_session(engine, two_ad_study, code, start_s)
    url = engine.url.render_as_string(hide_password=False)

    def report(*options) -> str:
        out = tmp_path / "report.html"
        assert main(["report", "Two ads", "--db", url, "--out", str(out), "--metric", "happy", *options]) == 0
        return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "", out.read_text(encoding="utf-8"))  # when it was made

    on_stimulus = report("--stimulus", "A")
    assert report("--align-on", "stimulus:A") == on_stimulus == report("--align-on", "stimulus time: A")
    assert report() != on_stimulus  # session time: the two sessions started the stimulus 37 s apart
    capsys.readouterr()
    for options, message in ((["--align-on", "stimulus:B"], "in which stimulus 'B' played"),
                             (["--align-on", "stimulus:"], "names no stimulus; give stimulus:NAME"),
                             (["--align-on", "stimulus:A", "--stimulus", "B"], "name different stimuli")):
        assert main(["report", "Two ads", "--db", url, "--out", str(tmp_path / "x.html"), *options]) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
