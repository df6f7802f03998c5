"""Sign-in throttle: failed attempts slow down further attempts, per account name and per client.

One :class:`SignInThrottle` lives in the server process (``st.cache_resource``), so opening a new browser
session, tab or browser does not reset it. Each key (``"name:<account>"``, ``"client:<ip>"``) counts its
recent failures; an attempt is checked only once every key it uses allows it, and the server sleeps until
then. Attempts that arrive together queue behind each other, so parallel guessing is no faster.

With the default :class:`ThrottlePolicy`: the first 3 failures cost nothing (typing errors), then every
attempt waits 0.4 s, doubling every 25 failures up to 30 s; a key is forgotten 15 minutes after its last
failure, and a correct password clears its account's count. 50 wrong passwords in a row take about 28 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottlePolicy:
    """How long an attempt waits after ``n`` recent failures of one key.

    Attributes
    ----------
    free_failures : int
        Failures that add no delay.
    first_delay_s : float
        Delay (seconds) once ``free_failures`` is reached.
    doubling_every : int
        The delay doubles after this many further failures.
    max_delay_s : float
        Upper bound of the delay (seconds).
    forget_after_s : float
        A key with no failure for this long starts again from zero.

    Raises
    ------
    ValueError
        If a count is negative, ``doubling_every`` is under 1 or a time is not positive.
    """

    free_failures: int = 3
    first_delay_s: float = 0.4
    doubling_every: int = 25
    max_delay_s: float = 30.0
    forget_after_s: float = 900.0

    def __post_init__(self) -> None:
        if self.free_failures < 0 or self.doubling_every < 1:
            raise ValueError(f"free_failures has to be >= 0 and doubling_every >= 1; got {self.free_failures}, {self.doubling_every}")
        if min(self.first_delay_s, self.max_delay_s, self.forget_after_s) <= 0:
            raise ValueError("first_delay_s, max_delay_s and forget_after_s have to be positive")

    def delay_s(self, failures: int) -> float:
        """Seconds an attempt waits after ``failures`` recent failures of its key."""
        if failures < self.free_failures:
            return 0.0
        doublings = min((failures - self.free_failures) // self.doubling_every, 32)
        return min(self.max_delay_s, self.first_delay_s * 2.0**doublings)


class _Entry:
    __slots__ = ("failures", "next_at", "last_failure")

    def __init__(self, now: float):
        self.failures = 0
        self.next_at = now
        self.last_failure = now


class SignInThrottle:
    """Process-wide counts of failed sign-ins (thread-safe).

    Parameters
    ----------
    policy : ThrottlePolicy, optional
    clock : callable, optional
        Monotonic seconds (default ``time.monotonic``).
    sleep : callable, optional
        Sleeps the given seconds (default ``time.sleep``; tests pass a fake that advances their clock).
    max_keys : int, optional
        Keys kept at most; beyond it the stalest are dropped (bounds memory under a flood of names).
    """

    def __init__(self, policy: ThrottlePolicy | None = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, max_keys: int = 10_000):  # fmt: skip
        self.policy = policy or ThrottlePolicy()
        self._clock, self._sleep, self._max_keys = clock, sleep, max_keys
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _entry(self, key: str, now: float) -> _Entry:
        entry = self._entries.get(key)
        if entry is not None and entry.failures and now - entry.last_failure > self.policy.forget_after_s:
            entry = None
        if entry is None:
            if len(self._entries) >= self._max_keys:
                self._prune(now)
            entry = self._entries[key] = _Entry(now)
        return entry

    def _prune(self, now: float) -> None:
        stale = [k for k, e in self._entries.items() if now - e.last_failure > self.policy.forget_after_s and e.next_at <= now]
        for key in stale:
            del self._entries[key]
        while len(self._entries) >= self._max_keys:
            del self._entries[min(self._entries, key=lambda k: self._entries[k].last_failure)]

    def reserve(self, keys: Iterable[str]) -> float:
        """Book the next slot for an attempt using ``keys``; return how many seconds to wait for it."""
        with self._lock:
            now = self._clock()
            entries = [self._entry(key, now) for key in keys]
            slot = max([now, *(e.next_at for e in entries)])
            for entry in entries:
                entry.next_at = slot + self.policy.delay_s(entry.failures)
            return slot - now

    def record(self, keys: Iterable[str], *, ok: bool) -> int:
        """Count the outcome of an attempt; return the largest failure count among ``keys`` afterwards.

        A failure raises every key's count and pushes its next slot by the new delay. Success clears the
        keys given (the caller passes the account's key only, so one correct password does not clear a
        client that is guessing other accounts).
        """
        with self._lock:
            now = self._clock()
            if ok:
                for key in keys:
                    self._entries.pop(key, None)
                return 0
            worst = 0
            for key in keys:
                entry = self._entry(key, now)
                entry.failures += 1
                entry.last_failure = now
                entry.next_at = max(entry.next_at, now + self.policy.delay_s(entry.failures))
                worst = max(worst, entry.failures)
            return worst

    def failures(self, key: str) -> int:
        """Recent failures counted for ``key``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._clock() - entry.last_failure > self.policy.forget_after_s:
                return 0
            return entry.failures

    def attempt(self, keys: Iterable[str], check: Callable[[], bool], *, clear_on_success: Iterable[str] = ()) -> tuple[bool, int]:
        """Wait for a slot, run ``check`` and count its outcome.

        Parameters
        ----------
        keys : iterable of str
            Keys this attempt is counted under (account and client).
        check : callable
            Returns whether the password is right.
        clear_on_success : iterable of str
            Keys whose counts a success clears.

        Returns
        -------
        (bool, int)
            Whether ``check`` said yes, and the largest failure count among ``keys`` afterwards.
        """
        keys = list(keys)
        wait = self.reserve(keys)
        if wait > 0:
            self._sleep(wait)
        ok = bool(check())
        if ok:
            return True, self.record(list(clear_on_success), ok=True)
        return False, self.record(keys, ok=False)
