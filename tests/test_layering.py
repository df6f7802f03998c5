"""Dependencies point one way: dashboard -> sessions -> fer_core; training -> fer_core.

Each package is imported in a fresh interpreter and the modules it pulled in are inspected, so the
check cannot be fooled by what other tests imported earlier.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

#: package -> top-level modules it must never import (directly or through its imports).
FORBIDDEN = {
    "fer_core": {"streamlit", "streamlit_webrtc", "sqlalchemy", "alembic", "sessions", "dashboard", "training"},
    "sessions": {"streamlit", "streamlit_webrtc", "dashboard", "training"},
    "training": {"streamlit", "streamlit_webrtc", "sqlalchemy", "sessions", "dashboard"},
    # The dashboard serves the model from the LiteRT flatbuffer stored in the model file: importing
    # TensorFlow/Keras there would bring back Streamlit's per-run keras clear_session (a full GC).
    "dashboard": {"training", "tensorflow", "keras"},
}

SUBMODULES = {
    "fer_core": ["fer_core.analyzer", "fer_core.video", "fer_core.classifier", "fer_core.detection", "fer_core.__main__"],
    "sessions": ["sessions.repository", "sessions.recorder", "sessions.aggregate", "sessions.importer",
                 "sessions.exports", "sessions.__main__"],
    "training": ["training.train", "training.evaluate", "training.export", "training.data", "training.__main__"],
    "dashboard": ["dashboard.auth", "dashboard.accounts", "dashboard.signin", "dashboard.throttle", "dashboard.tokens",
                  "dashboard.__main__", "dashboard.camera", "dashboard.charts", "dashboard.downloads", "dashboard.live",
                  "dashboard.model_card", "dashboard.resources", "dashboard.settings", "dashboard.tables",
                  "dashboard.tags", "dashboard.uploads"],
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upper_layers(package):
    code = (
        "import importlib, json, sys\n"
        f"for name in {SUBMODULES[package]!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    imported = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert package in imported
    assert not (imported & FORBIDDEN[package]), f"{package} imports {sorted(imported & FORBIDDEN[package])}"


def test_dashboard_loads_and_runs_the_shipped_model_without_tensorflow():
    """The claim in the README: the classifier the dashboard uses needs neither TensorFlow nor Keras."""
    from fer_core.classifier import default_model_path

    if not default_model_path().is_file():
        pytest.skip(f"no shipped model at {default_model_path()}")
    code = (
        "import json, sys, numpy as np\n"
        "from dashboard.resources import new_analyzer\n"
        "analyzer = new_analyzer()  # the shipped model and the default detector, as a live stream gets them\n"
        "probs = analyzer.classifier.predict(np.full((1, 64, 64), 128, np.uint8))\n"
        "assert probs.shape == (1, 7), probs.shape\n"
        "analyzer.analyze(np.zeros((480, 640, 3), np.uint8), 0.0)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    imported = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not (imported & {"tensorflow", "keras"}), sorted(imported & {"tensorflow", "keras"})
