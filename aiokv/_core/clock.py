"""The only place aiokv reads the time.

Expiry deadlines are absolute wall-clock times (seconds since the Unix epoch), so they mean the
same thing after a close and reopen. Tests and applications inject their own clock to move time
by hand instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Anything with a ``time()`` method returning Unix seconds as a float."""

    def time(self) -> float: ...


class SystemClock:
    """The real wall clock, :func:`time.time`."""

    __slots__ = ()

    # time.time itself, not a method calling it: every create asks the time.
    time = staticmethod(time.time)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to: for tests of code with TTLs.

    :param start: the initial time, in Unix seconds.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (which must not be negative)."""
        if seconds < 0:
            raise ValueError("a ManualClock only moves forward")
        self._now += seconds

    def set(self, now: float) -> None:
        """Jump to ``now``, forward or back (wall clocks do step back sometimes)."""
        self._now = float(now)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"
