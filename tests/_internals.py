"""The one door from the tests into aiokv's private modules.

Tests that look below the public API (the on-disk format, the index, the OS seam, a store's
engine objects) import what they need from here, so a move inside the package is mended in
this file alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiokv import AsyncDataStore
from aiokv._bitcask import options
from aiokv._bitcask.engine import compaction, iterate, recovery, verify, writer
from aiokv._bitcask.engine.compaction import Compactor, _pieces
from aiokv._bitcask.engine.lifecycle import Engine
from aiokv._bitcask.engine.reader import Reader
from aiokv._bitcask.engine.recovery import Recovered, recover
from aiokv._bitcask.engine.writer import REMAP_BYTES, Writer
from aiokv._bitcask.format import crc, hint, record
from aiokv._bitcask.format.crc import crc32
from aiokv._bitcask.format.hint import (
    HINT_HEADER_SIZE,
    BadHint,
    Hint,
    HintBuilder,
    check_entries,
    decode_hint,
    has_expiries,
    split_keys,
)
from aiokv._bitcask.format.names import hint_name, parse_segment_name, segment_name
from aiokv._bitcask.format.record import (
    BATCH_SIZE,
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    FILE_LOG,
    HEADER_SIZE,
    KIND_BATCH,
    KIND_DELETE,
    KIND_PUT,
    MAX_KEY_BYTES,
    MAX_RECORD_SIZE,
    MAX_SEGMENT_BYTES,
    BadRecord,
    FileHeader,
    Record,
    check_put,
    decode,
    decode_file_header,
    encode_batch,
    encode_batch_puts,
    encode_delete,
    encode_file_header,
    encode_put,
    file_version,
    put_value_py,
    scan,
    tombstone_target,
    value_start_py,
)
from aiokv._bitcask.index import index, keydir
from aiokv._bitcask.index.index import (
    Index,
    location,
    offset_of,
    segment_of,
    size_of,
    tombstone_size,
    tombstone_sizes,
)
from aiokv._bitcask.index.keydir import KeyDir, PyKeyDir, check_entries_py, check_hint_entries
from aiokv._bitcask.options import MIN_SEGMENT_MAX_BYTES
from aiokv._bitcask.system import files, segment, threads
from aiokv._bitcask.system.files import KILL_EXIT_CODE, FileSystem
from aiokv._bitcask.system.segment import Segment
from aiokv._core import chunks, codec
from aiokv._core.blocking import BlockingStore
from aiokv._core.checks import check_prefix
from aiokv._core.chunks import BlockingChunks, made, release, take
from aiokv._core.codec import (
    MAX_VALUE_BYTES,
    VALUE_JSON,
    VALUE_JSON64,
    _encode_plain_py,
    _encode_plains_py,
    _encode_with_json,
    _least_json_size_py,
    decode_value,
    encode_value,
    encode_values,
)
from aiokv._core.contract import AsyncStore

try:
    from aiokv._bitcask.format import _crecord as crecord
except ImportError:  # not built where no C compiler was found
    crecord = None  # type: ignore[assignment]
try:
    from aiokv._bitcask.index._ckeydir import KeyDir as CKeyDir
    from aiokv._bitcask.index._ckeydir import check_entries as ccheck_entries
except ImportError:
    CKeyDir = None  # type: ignore[assignment,misc]
    ccheck_entries = None  # type: ignore[assignment]
try:
    from aiokv._core._ccodec import check_key as c_check_key
    from aiokv._core._ccodec import encode_plain as c_encode_plain
    from aiokv._core._ccodec import encode_plains as c_encode_plains
    from aiokv._core._ccodec import least_json_size as c_least_json_size
except ImportError:
    c_check_key = None  # type: ignore[assignment]
    c_encode_plain = None  # type: ignore[assignment]
    c_encode_plains = None  # type: ignore[assignment]
    c_least_json_size = None  # type: ignore[assignment]


# -- a store's engine, for tests that look inside a running store ----------------------------


def engine_of(store: AsyncDataStore) -> Engine:
    """The engine of an open store."""
    engine = store._engine
    assert engine is not None, "the store is not open"
    return engine


def writer_of(store: AsyncDataStore) -> Writer:
    return engine_of(store).writer


def compactor_of(store: AsyncDataStore) -> Compactor:
    return engine_of(store).compactor


def segments_of(store: AsyncDataStore) -> dict[int, Segment]:
    """The open store's segment table (id -> segment)."""
    return engine_of(store).shared.segments


def active_of(store: AsyncDataStore) -> Segment:
    """The segment the open store appends to."""
    return engine_of(store).shared.active


def index_of(store: AsyncDataStore) -> Index:
    return engine_of(store).shared.index


# -- views the package itself has no use for ------------------------------------------------


def iter_entries(decoded: Hint) -> Iterator[tuple[int, int, int, int, int, float, int]]:
    """``(kind, key length, offset, size, seq, expiry, target)`` per entry, in file order."""
    return zip(*decoded.columns, strict=True)


def index_locations(table: Index) -> list[int]:
    """Every entry's location, sorted (no key can be listed: the index holds hashes)."""
    return sorted(table.locations())
