"""The index's packed locations and its bookkeeping, white-box."""

from __future__ import annotations

import pytest
from _internals import (
    FILE_HEADER_SIZE,
    KIND_PUT,
    MAX_RECORD_SIZE,
    MAX_SEGMENT_BYTES,
    HintBuilder,
    Index,
    decode_hint,
    index_locations,
    location,
    offset_of,
    segment_of,
    size_of,
    tombstone_size,
    tombstone_sizes,
)

pytestmark = pytest.mark.purepy


@pytest.mark.parametrize("segment", [1, 2, 4095, 4096, 2**27 - 1, 2**40])
@pytest.mark.parametrize("offset", [FILE_HEADER_SIZE, 2**16, 2**31, MAX_SEGMENT_BYTES - 1])
@pytest.mark.parametrize("size", [29, 2**15, MAX_RECORD_SIZE, 2**16 - 1])
def test_location_fields_round_trip_without_overlap(segment: int, offset: int, size: int) -> None:
    loc = location(segment, offset, size)
    assert (segment_of(loc), offset_of(loc), size_of(loc)) == (segment, offset, size)


def test_locations_differ_in_every_field() -> None:
    base = location(3, 1000, 200)
    assert len({base, location(4, 1000, 200), location(3, 1001, 200), location(3, 1000, 201)}) == 4


def test_put_overwrite_and_remove_keep_the_byte_accounting() -> None:
    index = Index()
    index.put(b"a", location(1, 32, 100), 0.0)
    index.put(b"bb", location(1, 132, 50), 0.0)
    assert (index.live_bytes[1], index.total_live_bytes) == (150, 150)
    assert index.tombstone_bytes == tombstone_size(b"a") + tombstone_size(b"bb")
    index.put(b"a", location(2, 32, 70), 0.0)  # a newer record of the same key
    assert (index.live_bytes[1], index.live_bytes[2], index.total_live_bytes) == (50, 70, 120)
    assert index.tombstone_bytes == tombstone_size(b"a") + tombstone_size(b"bb")
    assert index.remove(b"bb") == location(1, 132, 50)
    assert index.remove(b"bb") is None
    assert (index.live_bytes[1], index.total_live_bytes, len(index)) == (0, 70, 1)
    assert index.tombstone_bytes == tombstone_size(b"a")


def state(index: Index) -> tuple[object, ...]:
    keys = sorted(index.find(key) or 0 for key in (b"a", b"bb", b"ccc", b"dddd"))
    live = {segment: size for segment, size in index.live_bytes.items() if size}
    return keys, live, index.total_live_bytes, index.tombstone_bytes, len(index)


def test_removing_a_batch_of_keys_is_removing_each() -> None:
    """A delete_many's keys leave the index at their locations; an entry that is no longer
    there (the reaper dropped the key, or it was put anew) is passed over, as remove does."""
    one_by_one, batch = Index(), Index()
    for index in (one_by_one, batch):
        index.put(b"a", location(1, 32, 100), 0.0)
        index.put(b"bb", location(1, 132, 50), 1_000.0)
        index.put(b"ccc", location(2, 32, 70), 0.0)
        index.put(b"dddd", location(2, 102, 30), 0.0)
        index.put(b"ccc", location(3, 32, 75), 0.0)  # moved on since its location was found
    keys = [b"a", b"bb", b"ccc", b"gone"]
    locs = [location(1, 32, 100), location(1, 132, 50), location(2, 32, 70), location(1, 9, 9)]
    for key, loc in zip(keys, locs, strict=True):
        one_by_one.remove(key, loc)
    batch.remove_each(keys, locs)
    assert state(batch) == state(one_by_one)
    assert batch.find(b"ccc") == location(3, 32, 75)
    assert batch.deadline(b"bb") == 0.0  # its deadline went with it
    assert len(batch) == 2


def test_relocate_moves_only_a_key_still_at_its_old_place() -> None:
    index = Index()
    old = location(1, 32, 100)
    index.put(b"k", old, 0.0)
    assert index.relocate(b"k", old, location(5, 32, 100))
    assert index.find(b"k") == location(5, 32, 100)
    assert (index.live_bytes[1], index.live_bytes[5]) == (0, 100)
    assert not index.relocate(b"k", old, location(6, 32, 100))  # moved since
    assert index.find(b"k") == location(5, 32, 100)


def test_deadline_hides_a_key_from_its_deadline_on() -> None:
    index = Index()
    index.put(b"t", location(1, 32, 40), 100.0)
    index.put(b"p", location(1, 72, 40), 0.0)
    assert index.get_live(b"t", 99.999) is not None
    assert index.get_live(b"t", 100.0) is None
    assert index.find(b"t") is not None  # still indexed until reaped
    assert index.get_live(b"p", 1e12) is not None
    assert index.deadline(b"t") == 100.0
    assert index.deadline(b"p") == 0.0


def test_put_without_ttl_clears_an_older_deadline() -> None:
    index = Index()
    index.put(b"k", location(1, 32, 40), 100.0)
    index.remove(b"k")
    index.put(b"k", location(1, 72, 40), 0.0)
    assert index.get_live(b"k", 1e12) == location(1, 72, 40)
    assert index.drop_expired(1e12, 10) == 0  # the stale heap item is skipped
    assert len(index) == 1


def test_drop_expired_removes_due_keys_up_to_the_limit() -> None:
    index = Index()
    for i in range(5):
        index.put(b"k%d" % i, location(1, 32 + 40 * i, 40), 10.0 + i)
    index.put(b"forever", location(1, 500, 40), 0.0)
    assert index.drop_expired(12.0, 2) == 2
    assert index.drop_expired(12.0, 10) == 1
    assert [key for key in (b"forever", b"k0", b"k1", b"k2", b"k3", b"k4") if key in index] == [
        b"forever",
        b"k3",
        b"k4",
    ]
    assert index.total_live_bytes == 120
    assert index.drop_expired(1e9, 10) == 2
    assert len(index) == 1


def test_load_accounts_like_key_by_key_puts() -> None:
    entries = [(b"a", 32, 60, 50.0), ("é".encode(), 92, 70, 0.0), (b"b", 162, 80, 0.0)]
    builder = HintBuilder()
    built = Index()
    for key, offset, size, expiry in entries:
        builder.add(KIND_PUT, key, offset, size, 1, expiry, 0)
        built.put(key, location(1, offset, size), expiry)
    hint = decode_hint(builder.encode(1, 1, 242))
    loaded = Index()
    assert loaded.load(1, hint.keys, hint.columns, 0, 0) == (3, len(hint.keys))
    loaded.set_deadlines({b"a": 50.0})
    assert loaded.tombstone_bytes == built.tombstone_bytes
    assert loaded.total_live_bytes == built.total_live_bytes == 210
    assert loaded.live_bytes == built.live_bytes
    assert index_locations(loaded) == index_locations(built)
    assert loaded.get_live(b"a", 50.0) is None
    assert loaded.drop_expired(50.0, 10) == 1
    assert len(loaded) == 2


@pytest.mark.parametrize(
    "keys", [[], [b"a"], [b"a", b"bb"], [b"k" * 128, "\u00e9".encode() * 16, b"x"]]
)
def test_a_batchs_tombstone_room_is_the_sum_of_its_keys(keys: list[bytes]) -> None:
    assert tombstone_sizes(len(keys), sum(map(len, keys))) == sum(map(tombstone_size, keys))
