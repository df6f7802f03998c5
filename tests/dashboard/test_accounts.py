"""Account file and its command line: only hashes stored, blank or bad input refused, clear messages."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from dashboard.accounts import FIRST_ACCOUNT, AccountError, AccountStore, check_name, check_password

ROOT = Path(__file__).resolve().parents[2]
#: Cheap hashing parameters for the tests (the default costs ~0.1 s and 64 MiB per hash).
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def store(tmp_path) -> AccountStore:
    return AccountStore(tmp_path / "data" / "accounts.json", hasher=FAST)


def test_file_holds_a_hash_never_the_password_and_is_private(store):
    store.add("alice", "correct horse battery")
    text = store.path.read_text()
    assert "correct horse battery" not in text
    record = json.loads(text)["accounts"]["alice"]
    assert record["hash"].startswith("$argon2id$")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) & 0o077 == 0
    assert store.verify("alice", "correct horse battery")
    assert not store.verify("alice", "correct horse batterY")
    assert not store.verify("bob", "correct horse battery")
    assert store.names() == ["alice"]


@pytest.mark.parametrize("password", ["", " ", "        ", "\t\n  ", "short"])
def test_blank_or_short_passwords_are_refused_without_echo(store, password):
    with pytest.raises(AccountError) as info:
        store.add("alice", password)
    message = str(info.value)
    assert "password" in message and ("blank" in message or "at least 8" in message)
    if password.strip():
        assert password not in message
    assert not store.path.exists()


@pytest.mark.parametrize(
    ("name", "problem"),
    [("", "empty"), ("a" * 65, "at most 64"), ("al\x00ice", "control character"), ("al\nice", "control character"),
     (" alice", "whitespace"), ("alice\t", "control character")],
)  # fmt: skip
def test_bad_names_are_refused(name, problem):
    with pytest.raises(AccountError, match=problem):
        check_name(name)


def test_check_password_names_the_input_not_the_value():
    with pytest.raises(AccountError, match=r"^FER_RESEARCHER_PASSWORD is blank"):
        check_password("   ", what="FER_RESEARCHER_PASSWORD")
    assert check_password("  spaced out  ") == "  spaced out  "  # inner and edge spaces are kept, only blank is refused


def test_duplicate_unknown_and_new_password(store):
    store.add("alice", "first password")
    with pytest.raises(AccountError, match="exists already"):
        store.add("alice", "another one")
    with pytest.raises(AccountError, match="no account called 'bob'"):
        store.set_password("bob", "whatever123")
    before = store.fingerprint("alice")
    store.set_password("alice", "second password")
    assert store.fingerprint("alice") != before
    assert store.verify("alice", "second password") and not store.verify("alice", "first password")
    store.remove("alice")
    assert store.names() == [] and store.fingerprint("alice") is None
    with pytest.raises(AccountError, match="no account"):
        store.remove("alice")


def test_first_account_is_created_once_with_a_random_password(store):
    password = store.create_first_account()
    assert password and len(password) >= 16
    assert store.names() == [FIRST_ACCOUNT] and store.verify(FIRST_ACCOUNT, password)
    assert store.create_first_account() is None  # once
    other = AccountStore(store.path.parent / "other.json", hasher=FAST)
    assert other.create_first_account("seeded password") == "seeded password"
    with pytest.raises(AccountError, match="blank"):
        AccountStore(store.path.parent / "third.json", hasher=FAST).create_first_account("   ")


def test_cookie_secret_is_created_once_and_kept(store):
    secret = store.cookie_secret()
    assert len(secret) == 32
    assert AccountStore(store.path, hasher=FAST).cookie_secret() == secret


def test_corrupt_file_gives_a_message_naming_it(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(AccountError, match=r"accounts\.json is not valid JSON"):
        store.names()


def test_changes_by_another_process_are_seen(store):
    store.add("alice", "first password")
    assert store.names() == ["alice"]
    AccountStore(store.path, hasher=FAST).add("bob", "second password")  # e.g. the CLI while the server runs
    assert store.names() == ["alice", "bob"]


# -- the command line -----------------------------------------------------------------------------------


def cli(cwd: Path, *args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m dashboard ARGS`` with no FER_* variable but ``env``, in ``cwd`` (no fer-dashboard.toml there)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FER_")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "dashboard", *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd, env={**clean, **(env or {})}, timeout=120)  # fmt: skip


def test_cli_manages_accounts(tmp_path):
    path = tmp_path / "accounts.json"
    env = {"FER_AUTH_FILE": str(path)}
    added = cli(tmp_path, "users", "add", "alice", "--password-stdin", stdin="s3cret-enough\n", env=env)
    assert added.returncode == 0, added.stderr
    assert "created the account 'alice'" in added.stdout
    assert "s3cret-enough" not in path.read_text()
    assert AccountStore(path).verify("alice", "s3cret-enough")
    assert cli(tmp_path, "users", "list", env=env).stdout.split() == ["alice"]
    changed = cli(tmp_path, "users", "passwd", "alice", "--password-stdin", stdin="a-new-secret\n", env=env)
    assert changed.returncode == 0 and AccountStore(path).verify("alice", "a-new-secret")
    removed = cli(tmp_path, "users", "remove", "alice", env=env)
    assert removed.returncode == 0 and AccountStore(path).names() == []


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("users", "add", "bob", "--password-stdin"), "   \n", "password is blank"),
        (("users", "add", "bob", "--password-stdin"), "", "no password on standard input"),
        (("users", "add", "bo\tb", "--password-stdin"), "long enough\n", "control character"),
        (("users", "add", "x" * 70, "--password-stdin"), "long enough\n", "at most 64 characters"),
        (("users", "passwd", "nobody", "--password-stdin"), "long enough\n", "no account called 'nobody'"),
        (("users", "remove", "nobody"), "", "no account called 'nobody'"),
    ],
)
def test_cli_refuses_clearly_without_traceback(tmp_path, args, stdin, message):
    result = cli(tmp_path, "--auth-file", str(tmp_path / "accounts.json"), *args, stdin=stdin)
    assert result.returncode == 1
    assert message in result.stderr and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "accounts.json").exists()


def test_cli_init_takes_the_seed_password_from_the_environment(tmp_path):
    path = tmp_path / "accounts.json"
    init = cli(tmp_path, "--auth-file", str(path), "users", "init", env={"FER_RESEARCHER_PASSWORD": "seeded password"})
    assert init.returncode == 0 and "the password from FER_RESEARCHER_PASSWORD" in init.stdout
    assert "seeded password" not in init.stdout + path.read_text()
    assert AccountStore(path).verify("researcher", "seeded password")
    blank = cli(tmp_path, "--auth-file", str(tmp_path / "other.json"), "users", "init", env={"FER_RESEARCHER_PASSWORD": "  "})
    assert blank.returncode == 1 and "FER_RESEARCHER_PASSWORD is set but blank" in blank.stderr


def test_cli_add_existing_and_init(tmp_path):
    path = str(tmp_path / "accounts.json")
    init = cli(tmp_path, "--auth-file", path, "users", "init")
    assert init.returncode == 0 and "Sign in as researcher with password" in init.stdout
    password = init.stdout.split("with password ")[1].split()[0]
    assert AccountStore(path).verify("researcher", password)
    assert "nothing created" in cli(tmp_path, "--auth-file", path, "users", "init").stdout
    again = cli(tmp_path, "--auth-file", path, "users", "add", "researcher", "--password-stdin", stdin="long enough\n")
    assert again.returncode == 1 and "exists already" in again.stderr
    usage = cli(tmp_path, "--auth-file", path, "users", "frobnicate")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
