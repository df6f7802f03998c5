"""Command line of the dashboard: manage the researcher accounts.

    python -m dashboard users list
    python -m dashboard users add NAME [--password-stdin]
    python -m dashboard users passwd NAME [--password-stdin]
    python -m dashboard users remove NAME
    python -m dashboard users init          # create the first account 'researcher' if there is none

Passwords are asked twice with ``getpass`` (never echoed), or read as one line from standard input with
``--password-stdin`` (for scripts). The account file is the ``auth_file`` setting (``FER_AUTH_FILE``, the
config file, else ``accounts.json`` in the user data folder) unless ``--auth-file`` names another. Exit
status: 0 done, 1 refused (the message says why), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from dashboard.accounts import FIRST_ACCOUNT, AccountError, AccountStore, check_name, check_password


class CommandError(Exception):
    """A command that cannot be done; its message is printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m dashboard`` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m dashboard", description="Manage the dashboard's researcher accounts.")
    parser.add_argument("--auth-file", type=Path, help="account file (default: the auth_file setting, docs/SETTINGS.md)")
    commands = parser.add_subparsers(dest="command", required=True)
    users = commands.add_parser("users", help="researcher accounts").add_subparsers(dest="action", required=True)
    users.add_parser("list", help="list the account names")
    for action, text in (("add", "create an account"), ("passwd", "give an account a new password (signs it out everywhere)")):
        sub = users.add_parser(action, help=text)
        sub.add_argument("name")
        sub.add_argument("--password-stdin", action="store_true", help="read the password as one line from standard input")
    users.add_parser("remove", help="delete an account (signs it out everywhere)").add_argument("name")
    init = users.add_parser("init", help=f"create the account '{FIRST_ACCOUNT}' with a random password if there is no account")
    init.add_argument("--quiet", action="store_true", help="print nothing when accounts exist already")
    return parser


def read_password(*, from_stdin: bool, stdin=None) -> str:
    """The new password: one line of ``stdin``, or typed twice at a ``getpass`` prompt.

    Raises
    ------
    CommandError
        If nothing was given, the two entries differ, or the password is not acceptable
        (:func:`dashboard.accounts.check_password`).
    """
    if from_stdin:
        line = (stdin or sys.stdin).readline()
        if not line:
            raise CommandError("no password on standard input (--password-stdin reads one line)")
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        try:
            password = getpass.getpass("New password: ")
            again = getpass.getpass("Repeat it: ")
        except EOFError:
            raise CommandError("no password typed; use --password-stdin to pass it from a script") from None
        if password != again:
            raise CommandError("the two passwords differ; nothing changed")
    try:
        return check_password(password)
    except AccountError as exc:
        raise CommandError(f"{exc}; nothing changed") from None


def load_settings():
    """The dashboard's settings (:func:`dashboard.settings.load_settings`).

    Raises
    ------
    CommandError
        If they are invalid (the message names the setting).
    """
    from dashboard.settings import load_settings

    try:
        return load_settings()
    except ValueError as exc:
        raise CommandError(f"the dashboard settings are invalid: {exc} (docs/SETTINGS.md)") from None


def auth_file(args: argparse.Namespace) -> Path:
    """The account file: ``--auth-file``, else the dashboard's ``auth_file`` setting."""
    return args.auth_file if args.auth_file is not None else load_settings().resolved_auth_file


def run(args: argparse.Namespace, *, stdin=None, out=None) -> None:
    """Carry out one parsed command, printing its result on ``out`` (default stdout).

    Raises
    ------
    CommandError
        If the command is refused (bad name or password, unknown or existing account, unreadable file).
    """
    out = out or sys.stdout
    store = AccountStore(auth_file(args))
    try:
        if args.action == "list":
            names = store.names()
            print("\n".join(names) if names else f"no accounts in {store.path}", file=out)
        elif args.action == "init":
            seed = load_settings().researcher_password  # FER_RESEARCHER_PASSWORD, when set, is the first password
            password = store.create_first_account(seed)
            if password is not None:
                shown = "the password from FER_RESEARCHER_PASSWORD" if seed else f"password {password}"
                print(f"Created the account '{FIRST_ACCOUNT}' in {store.path}.\nSign in as {FIRST_ACCOUNT} with {shown}\n"
                      f"(shown once; change it with: python -m dashboard users passwd {FIRST_ACCOUNT})", file=out)  # fmt: skip
            elif not args.quiet:
                print(f"{store.path} has accounts already: nothing created", file=out)
        elif args.action == "remove":
            store.remove(check_name(args.name))
            print(f"removed the account {args.name!r}", file=out)
        else:
            name = check_name(args.name)
            if args.action == "add" and store.exists(name):
                raise CommandError(f"account {name!r} exists already; use 'users passwd {name}' to change its password")
            if args.action == "passwd" and not store.exists(name):
                raise CommandError(f"no account called {name!r}; existing: {store.names() or 'none'}")
            password = read_password(from_stdin=args.password_stdin, stdin=stdin)
            if args.action == "add":
                store.add(name, password)
                print(f"created the account {name!r}", file=out)
            else:
                store.set_password(name, password)
                print(f"changed the password of {name!r}; its browsers have to sign in again", file=out)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"the account file {store.path} cannot be used: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return the exit status (0 done, 1 refused, 2 wrong usage)."""
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; nothing changed", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
