"""The one door from the tests into aiokv's private modules.

Tests that look below the public API (the on-disk format, the index, the OS seam, a store's
engine objects) import what they need from here, so a move inside the package is mended in
this file alone.
"""

from __future__ import annotations

from typing import Any

from aiokv import AsyncDataStore
from aiokv._bitcask import options
from aiokv._bitcask.engine import compaction, recovery, writer
from aiokv._bitcask.engine.compaction import _pieces
from aiokv._bitcask.engine.recovery import Recovered, recover
from aiokv._bitcask.engine.writer import REMAP_BYTES, Writer
from aiokv._bitcask.format import crc, hint, record
from aiokv._bitcask.format.crc import crc32
from aiokv._bitcask.format.hint import (
    HINT_HEADER_SIZE,
    BadHint,
    HintBuilder,
    check_entries,
    decode_hint,
    hint_name,
    iter_entries,
    split_keys,
)
from aiokv._bitcask.format.record import (
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    FILE_LOG,
    HEADER_SIZE,
    KIND_DELETE,
    KIND_PUT,
    MAX_KEY_BYTES,
    MAX_RECORD_SIZE,
    BadRecord,
    FileHeader,
    Record,
    check_put,
    decode,
    decode_file_header,
    encode_delete,
    encode_file_header,
    encode_put,
    tombstone_target,
    value_start_py,
)
from aiokv._bitcask.index import index, keydir
from aiokv._bitcask.index.index import (
    MAX_SEGMENT_BYTES,
    Index,
    location,
    offset_of,
    segment_of,
    size_of,
    tombstone_size,
)
from aiokv._bitcask.index.keydir import KeyDir, PyKeyDir
from aiokv._bitcask.options import MIN_SEGMENT_MAX_BYTES
from aiokv._bitcask.system import files, segment, threads
from aiokv._bitcask.system.files import KILL_EXIT_CODE, FileSystem
from aiokv._bitcask.system.segment import parse_segment_name, segment_name
from aiokv._core import codec
from aiokv._core.codec import (
    MAX_VALUE_BYTES,
    VALUE_JSON,
    VALUE_JSON64,
    _encode_with_json,
    decode_value,
    encode_value,
)

try:
    from aiokv._bitcask.format import _crecord as crecord
except ImportError:  # not built where no C compiler was found
    crecord = None  # type: ignore[assignment]
try:
    from aiokv._bitcask.index._ckeydir import KeyDir as CKeyDir
except ImportError:
    CKeyDir = None  # type: ignore[assignment,misc]
