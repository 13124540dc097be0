"""Paging through the keys: each page is the smallest keys, in sorted order, after a cursor.

The store yields its keys in no set order, so a page cannot simply resume "after the last key
yielded". Instead the cursor names the last key of the previous page and the next page is the
``limit`` smallest live keys greater than it. Every key live throughout the paging is then on
exactly one page: each scan of the store yields it (the iteration guarantee), and the pages
cover the sorted keys in consecutive, disjoint ranges. A page costs one scan of the keys with
the prefix, in memory O(limit) and time O(n log limit).
"""

from __future__ import annotations

import base64
import binascii
import heapq
from collections.abc import AsyncIterable
from typing import Final

from starlette.datastructures import QueryParams

from aiokv.server.errors import RequestError

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 10_000


class _Descending(str):
    """A key that sorts backwards, so that ``heapq``'s min-heap keeps the largest on top."""

    __slots__ = ()

    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)


def encode_cursor(key: str) -> str:
    """An opaque cursor for the page after ``key``: URL-safe base64 of its UTF-8, unpadded."""
    return base64.urlsafe_b64encode(key.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> str:
    """The key a cursor from :func:`encode_cursor` names, or :class:`RequestError` 400."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise RequestError(400, f"cursor {cursor[:40]!r} is not one this server gave") from None


def parse_limit(query: QueryParams) -> int:
    text = query.get("limit", "")
    if text == "":
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise RequestError(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


async def smallest_after(
    keys: AsyncIterable[str], after: str | None, limit: int
) -> tuple[list[str], bool]:
    """The ``limit`` smallest of ``keys`` greater than ``after`` (all of them when ``None``),
    sorted, and whether any greater key was left out."""
    heap: list[_Descending] = []  # heap[0] is the largest kept
    more = False
    async for key in keys:
        if after is not None and key <= after:
            continue
        if len(heap) < limit:
            heapq.heappush(heap, _Descending(key))
        elif str.__lt__(key, heap[0]):  # as str: heap[0] sorts backwards
            heapq.heapreplace(heap, _Descending(key))
            more = True
        else:
            more = True
    return sorted(map(str, heap)), more
