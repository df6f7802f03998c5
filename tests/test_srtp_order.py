"""WebRTC's SRTP (pylibsrtp, under aiortc) still works in a dashboard process once TensorFlow is loaded.

Loaded after TensorFlow, libsrtp calls TensorFlow's BoringSSL HMAC with OpenSSL's structures and the process
segfaults (dashboard/__init__.py); importing the ``dashboard`` package first loads it safely.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

SRTP_ROUNDTRIP = """
import dashboard  # first, as every dashboard entry point
import tensorflow  # then the model's runtime (a model file without an embedded LiteRT copy; the tests)
import dashboard.live  # streamlit-webrtc and aiortc
from pylibsrtp import Policy, Session

key = bytes(range(30))
rtp = bytes([0x80, 0x60, 0x00, 0x01, 0, 0, 0, 1, 0x12, 0x34, 0x56, 0x78]) + b"payload" * 10
sender = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
receiver = Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
assert receiver.unprotect(sender.protect(rtp)) == rtp
print("srtp ok")
"""


def test_srtp_round_trip_after_tensorflow_in_the_dashboards_import_order():
    done = subprocess.run([sys.executable, "-c", SRTP_ROUNDTRIP], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "srtp ok" in done.stdout, (done.returncode, done.stderr[-2000:])
