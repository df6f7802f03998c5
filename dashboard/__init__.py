"""Streamlit dashboard of the FER platform: record, review and compare sessions in the browser.

Start it with ``streamlit run dashboard/app.py`` (or ``make dashboard``); settings in docs/SETTINGS.md.
"""

# aiortc's SRTP library has to be loaded before TensorFlow in any process that holds both (the test suite; a dashboard
# serving a model file without its embedded LiteRT copy, which is loaded through Keras). TensorFlow's framework
# library exports its own (BoringSSL) HMAC functions to the whole process; libsrtp initialised after it calls them
# with OpenSSL's structures and the process dies (segfault in ``srtp_init``, seen with tensorflow 2.21 and pylibsrtp
# 0.12 and 1.0). Every entry point of the dashboard imports this package first; tests/test_srtp_order.py checks it.
import pylibsrtp  # noqa: E402, F401
