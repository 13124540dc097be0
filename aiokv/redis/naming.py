"""How a store's keys are named in Redis, matched by ``SCAN`` and placed in cluster slots.

A key is stored as ``prefix + key``, both UTF-8, so several stores share one Redis by their
prefixes. ``SCAN MATCH`` takes a glob, so the prefixes are escaped there (``*``, ``?``, ``[``,
``]`` and ``\\`` each behind a backslash): a store named ``a*:`` never sees the keys of
``ab:``. A name whose remainder after the prefix is not a valid aiokv key (longer than a key,
or not UTF-8) is someone else's and is passed over by iteration.

In a Redis Cluster a key's slot is the CRC16 of its name, or of the part between the first
``{`` and the next ``}`` when there is one (a hash tag). A prefix holding a hash tag, such as
``{users}:``, puts every key of the store in one slot, so every batch of it is atomic there.
"""

from __future__ import annotations

import re
from typing import Final

from redis.crc import key_slot

from aiokv._core.codec import MAX_KEY_LENGTH

_GLOB: Final = re.compile(rb"([*?\[\]\\])")


def glob_escape(raw: bytes) -> bytes:
    """``raw`` as a glob that matches exactly itself."""
    return _GLOB.sub(rb"\\\1", raw)


def own_key(name: bytes, prefix: bytes) -> str | None:
    """The aiokv key a Redis name of this store holds, or None if it is not one of ours."""
    if not name.startswith(prefix):
        return None
    try:
        key = name[len(prefix) :].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return key if 1 <= len(key) <= MAX_KEY_LENGTH else None


def by_slot(names: list[bytes]) -> list[list[int]]:
    """The positions of ``names`` grouped by their cluster slot, each group in order."""
    groups: dict[int, list[int]] = {}
    for index, name in enumerate(names):
        groups.setdefault(key_slot(name), []).append(index)
    return list(groups.values())
