"""Every tunable of a store in one frozen, validated object; units are in the names."""

from __future__ import annotations

import dataclasses
from typing import Final, Literal

from aiokv._bitcask.format.record import FILE_HEADER_SIZE, MAX_RECORD_SIZE, MAX_SEGMENT_BYTES
from aiokv._core.clock import Clock, SystemClock
from aiokv.errors import InvalidOptionError

DEFAULT_MAX_SIZE: Final = 2**30
"""The default bound on the total size of the store directory: 1 GiB."""

MIN_MAX_SIZE: Final = 2**20
"""The smallest ``max_size`` accepted: 1 MiB."""

DEFAULT_SEGMENT_MAX_BYTES: Final = 64 * 2**20
"""Segments roll over at 64 MiB unless ``max_size`` is small (see ``segment_bytes_for``)."""

MIN_SEGMENT_MAX_BYTES: Final = 2 * MAX_RECORD_SIZE + FILE_HEADER_SIZE
"""A segment must hold at least two records of the largest size."""

Durability = Literal["flush", "fsync"]


def segment_bytes_for(max_size: int) -> int:
    """The default segment size for a store of ``max_size``: 64 MiB, or 1/16 of a small cap.

    A store is many segments even at 1 MiB, so that compaction can reclaim
    space one segment at a time while staying under the cap.
    """
    return max(MIN_SEGMENT_MAX_BYTES, min(DEFAULT_SEGMENT_MAX_BYTES, max_size // 16))


@dataclasses.dataclass(frozen=True)
class Options:
    """A store's options, checked once when the store is constructed.

    :param max_size: bound on the total size in bytes of every file in the store directory.
    :param durability: ``"flush"`` acknowledges a write once the OS has it (it survives the
        process being killed); ``"fsync"`` once it is on the disk (it survives power loss).
    :param segment_max_bytes: size at which the active segment is sealed and a new one begun;
        ``None`` picks :func:`segment_bytes_for` ``(max_size)``.
    :param reaper_interval_s: how often the reaper drops expired keys from the index.
    :param compact_dead_ratio: background compaction runs while more than this fraction of
        the sealed segments' bytes is dead; ``None`` turns it off.
    :param clock: where the time comes from (``SystemClock()`` when ``None``).
    """

    max_size: int = DEFAULT_MAX_SIZE
    durability: Durability = "flush"
    segment_max_bytes: int | None = None
    reaper_interval_s: float = 1.0
    compact_dead_ratio: float | None = 0.3
    clock: Clock = dataclasses.field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        _check_int("max_size", self.max_size, MIN_MAX_SIZE)
        if self.durability not in ("flush", "fsync"):
            raise InvalidOptionError(
                f"durability must be 'flush' or 'fsync', got {self.durability!r}"
            )
        if self.segment_max_bytes is None:
            object.__setattr__(self, "segment_max_bytes", segment_bytes_for(self.max_size))
        else:
            _check_int("segment_max_bytes", self.segment_max_bytes, MIN_SEGMENT_MAX_BYTES)
            if self.segment_max_bytes >= MAX_SEGMENT_BYTES:
                raise InvalidOptionError(
                    f"segment_max_bytes must be under {MAX_SEGMENT_BYTES} bytes, "
                    f"got {self.segment_max_bytes}"
                )
            if self.segment_max_bytes > self.max_size:
                raise InvalidOptionError(
                    f"segment_max_bytes ({self.segment_max_bytes}) exceeds max_size "
                    f"({self.max_size})"
                )
        if (
            isinstance(self.reaper_interval_s, bool)
            or not isinstance(self.reaper_interval_s, (int, float))
            or not 0 < self.reaper_interval_s <= 86400
        ):
            raise InvalidOptionError(
                f"reaper_interval_s must be a number of seconds in (0, 86400], "
                f"got {self.reaper_interval_s!r}"
            )
        ratio = self.compact_dead_ratio
        if ratio is not None and (
            isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1
        ):
            raise InvalidOptionError(
                f"compact_dead_ratio must be None or a fraction in (0, 1), got {ratio!r}"
            )
        if not callable(getattr(self.clock, "time", None)):
            raise InvalidOptionError(f"clock must have a time() method, got {self.clock!r}")

    @property
    def segment_bytes(self) -> int:
        """``segment_max_bytes``, never ``None`` once constructed."""
        assert self.segment_max_bytes is not None
        return self.segment_max_bytes


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise InvalidOptionError(f"{name} must be at least {minimum} bytes, got {value}")
