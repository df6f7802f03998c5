"""Sign-in: throttle, signed tokens, the FER_AUTH=none rule, and the gate on the pages (AppTest)."""

from __future__ import annotations

import logging
import re
import threading

import pytest
from argon2 import PasswordHasher

from dashboard import auth
from dashboard.accounts import AccountStore
from dashboard.signin import SignIn, check_no_auth_allowed, is_loopback
from dashboard.text import WORD_JOINER
from dashboard.throttle import SignInThrottle, ThrottlePolicy
from dashboard.tokens import RevokedTokens, TokenSigner
from tests.dashboard.seed import seed_session

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
SECRET = b"k" * 32


class FakeTime:
    """A clock and a sleep that advances it (no real waiting)."""

    def __init__(self, start: float = 1_000_000.0):
        self.now = start
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


def _texts(at) -> str:
    return " ".join(str(e.value) for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning",
                                               "error", "success") for e in getattr(at, kind)).replace(WORD_JOINER, "")  # fmt: skip


# -- throttle ---------------------------------------------------------------------------------------------


def test_fifty_wrong_passwords_take_at_least_ten_seconds():
    clock = FakeTime()
    throttle = SignInThrottle(clock=clock, sleep=clock.sleep)
    for _ in range(50):
        ok, _ = throttle.attempt(["name:researcher", "client:local"], lambda: False)
        assert not ok
    assert clock.slept >= 10.0
    assert clock.slept == pytest.approx(25 * 0.4 + 22 * 0.8)  # the schedule in the module docstring (27.6 s)


def test_policy_schedule_is_capped():
    policy = ThrottlePolicy()
    assert [policy.delay_s(n) for n in (0, 2, 3, 27, 28, 53)] == [0.0, 0.0, 0.4, 0.4, 0.8, 1.6]
    assert policy.delay_s(10_000) == policy.max_delay_s


def test_new_browser_sessions_share_the_count_and_parallel_attempts_queue():
    clock = FakeTime()
    throttle = SignInThrottle(clock=clock, sleep=clock.sleep)
    for _ in range(10):
        throttle.record(["name:researcher"], ok=False)
    # two "sessions" at the same instant: the second one's slot is after the first one's
    first = throttle.reserve(["name:researcher", "client:a"])
    second = throttle.reserve(["name:researcher", "client:b"])
    assert first == pytest.approx(0.4) and second == pytest.approx(0.8)
    assert throttle.failures("name:researcher") == 10


def test_client_key_slows_guessing_many_names_and_success_clears_only_the_name():
    clock = FakeTime()
    throttle = SignInThrottle(clock=clock, sleep=clock.sleep)
    for i in range(10):
        throttle.attempt([f"name:user{i}", "client:x"], lambda: False)
    assert throttle.failures("client:x") == 10 and clock.slept > 0
    ok, failures = throttle.attempt(["name:user0", "client:x"], lambda: True, clear_on_success=["name:user0"])
    assert ok and failures == 0
    assert throttle.failures("name:user0") == 0 and throttle.failures("client:x") == 10


def test_counts_are_forgotten_after_quiet_time():
    clock = FakeTime()
    throttle = SignInThrottle(clock=clock, sleep=clock.sleep)
    for _ in range(5):
        throttle.record(["name:a"], ok=False)
    clock.now += ThrottlePolicy().forget_after_s + 1
    assert throttle.failures("name:a") == 0 and throttle.reserve(["name:a"]) == 0.0


def test_throttle_is_thread_safe():
    throttle = SignInThrottle(ThrottlePolicy(free_failures=1000))
    threads = [threading.Thread(target=lambda: [throttle.record(["name:a"], ok=False) for _ in range(200)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert throttle.failures("name:a") == 800


# -- tokens -----------------------------------------------------------------------------------------------


def test_token_round_trip_and_tampering_is_refused():
    signer = TokenSigner(SECRET, max_age_s=3600)
    token = signer.issue("alice", "f1")
    assert signer.read(token).name == "alice" and signer.read(token).fingerprint == "f1"
    version, payload, mac = token.split(".")
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    assert signer.read(f"{version}.{forged}.{mac}") is None
    assert signer.read(f"{version}.{payload}.{mac[:-1]}x") is None
    assert TokenSigner(b"other secret 1234567", max_age_s=3600).read(token) is None
    for junk in (None, "", "v1", "v1..", "v2." + token[3:], "x" * 5000, 42):
        assert signer.read(junk) is None


def test_expired_token_is_refused():
    clock = FakeTime()
    signer = TokenSigner(SECRET, max_age_s=12 * 3600, clock=clock)
    token = signer.issue("alice", "f1")
    clock.now += 12 * 3600 - 5
    assert signer.read(token) is not None
    clock.now += 10
    assert signer.read(token) is None


def test_revoked_tokens_are_pruned_once_expired():
    clock = FakeTime()
    revoked = RevokedTokens(clock=clock)
    revoked.revoke("a", clock.now + 10)
    assert "a" in revoked
    clock.now += 20
    revoked.revoke("b", clock.now + 10)
    assert "a" not in revoked and "b" in revoked


@pytest.fixture
def sign_in(tmp_path) -> SignIn:
    store = AccountStore(tmp_path / "accounts.json", hasher=FAST)
    store.add("alice", "alice's password")
    clock = FakeTime()
    return SignIn(store, max_age_s=3600, throttle=SignInThrottle(clock=clock, sleep=clock.sleep))


def test_sign_in_issues_a_token_that_a_new_password_or_sign_out_invalidates(sign_in):
    token, failures = sign_in.sign_in("alice", "alice's password", client=None)
    assert token and failures == 0
    assert sign_in.researcher(token) == "alice"
    sign_in.sign_out(token)
    assert sign_in.researcher(token) is None
    token, _ = sign_in.sign_in(" alice ", "alice's password", client=None)  # surrounding spaces of a typed name
    assert sign_in.researcher(token) == "alice"
    sign_in.store.set_password("alice", "a new password")
    assert sign_in.researcher(token) is None
    token, _ = sign_in.sign_in("alice", "a new password", client=None)
    sign_in.store.remove("alice")
    assert sign_in.researcher(token) is None


def test_failures_are_logged_with_the_name_never_the_password(sign_in, caplog):
    with caplog.at_level(logging.INFO, logger="dashboard.signin"):
        token, failures = sign_in.sign_in("alice", "not-her-password", client="203.0.113.9")
        sign_in.sign_in("ev\nil", "guess-two", client="203.0.113.9")
    assert token is None and failures == 1
    text = caplog.text
    assert "sign-in failed for account 'alice' from 203.0.113.9" in text
    assert "'ev\\nil'" in text  # control characters escaped: one log line per failure
    assert "not-her-password" not in text and "guess-two" not in text


# -- FER_AUTH=none ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_no_auth_is_accepted_on_loopback(address):
    assert is_loopback(address)
    check_no_auth_allowed(address)


@pytest.mark.parametrize("address", [None, "", "0.0.0.0", "::", "192.168.1.20", "dashboard.example.org"])
def test_no_auth_is_refused_elsewhere(address):
    with pytest.raises(ValueError, match="FER_AUTH=none .* only allowed when the server listens on 127.0.0.1 only"):
        check_no_auth_allowed(address)


@pytest.mark.parametrize("address", ["", "0.0.0.0"])
def test_no_auth_on_a_public_address_shows_no_page(app, engine, address):
    from streamlit import config

    seed_session(engine, study="secret study", participant="P-HIDDEN")
    config.set_option("server.address", address)  # FER_AUTH=none comes from the db_url fixture, which restores this
    at = app()
    assert "FER_AUTH=none" in _texts(at) and "secret study" not in _texts(at)
    assert len(at.dataframe) == 0


# -- the gate on the pages (AppTest) ----------------------------------------------------------------------


def _sign_in(at, name: str, password: str):
    at.text_input(key="auth_username").input(name)
    at.text_input(key="auth_password").input(password)
    at.button[0].click().run()
    return at


def test_signed_out_sees_only_the_sign_in_form(app, engine, signed_out, capsys):
    seed_session(engine, study="Trailer study", participant="P-SECRET")
    at = app()
    assert not at.exception
    assert [t.value for t in at.title] == ["FER dashboard"]
    assert "Trailer study" not in _texts(at) and "P-SECRET" not in _texts(at)
    assert len(at.dataframe) == 0 and len(at.selectbox) == 0
    printed = capsys.readouterr().out  # first start: the account and its one-time password, in the terminal only
    password = re.search(r"as researcher with password (\S+)", printed).group(1)
    assert password not in _texts(at)
    assert "researcher" in AccountStore(signed_out).names() and password not in signed_out.read_text()
    _sign_in(at, "researcher", "wrong password")
    assert "Wrong username or password (attempt 1)" in _texts(at)
    _sign_in(at, "researcher", password)
    assert not at.exception
    assert [t.value for t in at.title] == ["Studies"]
    at.switch_page("app_pages/model.py").run()
    assert not at.exception and [t.value for t in at.title] == ["Model"]


def test_sign_out_returns_to_the_form_and_clears_the_cookie(app, db_url, signed_out, monkeypatch):
    AccountStore(signed_out).add("alice", "alice's password")
    at = _sign_in(app(), "alice", "alice's password")
    assert [t.value for t in at.title] == ["Studies"]
    scripts = " ".join(str(e.proto.body) for e in at.get("html"))
    assert "fer_sign_in=v1." in scripts and "SameSite=Strict" in scripts and "Max-Age=43200" in scripts
    at.button(key="auth_sign_out").click().run()
    assert [t.value for t in at.title] == ["FER dashboard"]
    assert "Max-Age=0" in " ".join(str(e.proto.body) for e in at.get("html"))


@pytest.mark.parametrize("tamper", [False, True])
def test_cookie_signs_in_a_new_session_unless_tampered(app, db_url, signed_out, monkeypatch, tamper):
    from dashboard.resources import get_sign_in

    AccountStore(signed_out).add("alice", "alice's password")
    at = app()  # opens the account file and its secret
    token, _ = get_sign_in().sign_in("alice", "alice's password", client=None)
    if tamper:
        token = token.replace(".", ".x", 1)
    monkeypatch.setattr(auth, "cookie_token", lambda: token)
    at = app()  # a reload: a new browser session that sends the cookie
    assert not at.exception
    assert [t.value for t in at.title] == (["FER dashboard"] if tamper else ["Studies"])


def test_blank_seed_password_is_refused(app, db_url, signed_out, monkeypatch):
    monkeypatch.setenv("FER_RESEARCHER_PASSWORD", " ")
    at = app()
    assert "FER_RESEARCHER_PASSWORD is set but blank" in _texts(at)
    assert [t.value for t in at.title] != ["Studies"] and not signed_out.exists()
