"""The batch record: a batch's records are read whole or not at all."""

from __future__ import annotations

import pytest
from _internals import FILE_COMPACTED, FILE_HEADER_SIZE, FILE_LOG, HEADER_SIZE, KIND_PUT
from _internals import record as _record

BadRecord = _record.BadRecord


def batch(first_seq: int, count: int) -> tuple[bytes, list[bytes]]:
    """A batch record and its ``count`` puts, as the writer lays them out."""
    puts = [
        _record.encode_put(first_seq + i, f"k{i}".encode(), b'{"i":%d}' % i, 0.0)
        for i in range(count)
    ]
    body = b"".join(puts)
    return _record.encode_batch(first_seq, body, count) + body, puts


def test_a_batch_scans_as_its_records() -> None:
    before = _record.encode_put(1, b"a", b"{}", 0.0)
    data, _puts = batch(2, 5)
    after = _record.encode_put(7, b"z", b"{}", 0.0)
    found = list(_record.scan(before + data + after, 0))
    assert [record.key for _offset, record in found] == [
        b"a",
        *(b"k%d" % i for i in range(5)),
        b"z",
    ]
    assert all(record.kind == KIND_PUT for _offset, record in found)
    # The offsets are the records' own, past the batch record.
    assert found[1][0] == len(before) + _record.BATCH_SIZE
    assert found[-1][0] == len(before) + len(data)
    assert [record.seq for _offset, record in found] == list(range(1, 8))


def test_a_batch_cut_anywhere_is_refused_at_its_batch_record() -> None:
    before = _record.encode_put(1, b"a", b"{}", 0.0)
    data, _puts = batch(2, 4)
    whole = before + data
    for cut in range(len(before) + 1, len(whole)):
        found = []
        with pytest.raises(BadRecord) as bad:
            found.extend(_record.scan(whole[:cut], 0))
        assert bad.value.offset == len(before), cut  # cut off whole, at the batch record
        assert [record.key for _offset, record in found] == [b"a"], cut


def test_a_batch_with_any_byte_flipped_yields_none_of_its_records() -> None:
    data, _puts = batch(1, 3)
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        found = []
        with pytest.raises(BadRecord) as bad:
            found.extend(_record.scan(bytes(damaged), 0))
        assert found == [], position
        assert bad.value.offset == 0, position


@pytest.mark.parametrize("count", [1, 2, 4])
def test_a_batch_whose_count_disagrees_is_refused(count: int) -> None:
    _data, puts = batch(1, 3)
    body = b"".join(puts)
    before = _record.encode_put(9, b"z", b"{}", 0.0)
    wrong = before + _record.encode_batch(1, body, count) + body
    found = []
    with pytest.raises(BadRecord) as bad:
        found.extend(_record.scan(wrong, 0))
    assert bad.value.offset == len(before)  # the batch record: the batch is cut off whole
    assert [record.key for _offset, record in found] == [b"z"]


def test_a_batch_record_inside_a_batch_is_refused() -> None:
    inner, _puts = batch(1, 2)
    outer = _record.encode_batch(1, inner, 1) + inner
    with pytest.raises(BadRecord):
        list(_record.scan(outer, 0))


def test_a_batch_record_decodes_with_its_header_fields() -> None:
    data, _puts = batch(9, 2)
    record = _record.decode(data)
    assert (record.kind, record.seq, record.key, record.size) == (
        _record.KIND_BATCH,
        9,
        b"",
        _record.BATCH_SIZE,
    )
    assert _record.batch_span(data, record) == (len(data) - _record.BATCH_SIZE, 2)
    assert _record.BATCH_SIZE == HEADER_SIZE + 12


@pytest.mark.parametrize("kind", [FILE_LOG, FILE_COMPACTED])
def test_files_of_version_1_still_open(kind: int) -> None:
    old = _record.encode_file_header(kind, 5, 0, version=1)
    assert _record.decode_file_header(old) == (kind, 5, 0)
    assert _record.file_version(old) == 1
    assert _record.file_version(_record.encode_file_header(kind, 5)) == 2
    assert len(old) == FILE_HEADER_SIZE
    with pytest.raises(BadRecord, match="unknown format version 3"):
        _record.decode_file_header(_record.encode_file_header(kind, 5, 0, version=3))
