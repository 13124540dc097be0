"""The key directory in C: see :mod:`index.keydir`, whose ``PyKeyDir`` it behaves as."""

from array import array
from typing import Any, final

@final
class KeyDir:
    def __init__(self, seed: bytes, hash_bits: int = 48) -> None: ...
    def hash(self, key: bytes) -> int: ...
    def __len__(self) -> int: ...
    def get(self, key: bytes) -> int | None: ...
    def put(self, key: bytes, loc: int) -> int | None: ...
    def pop(self, key: bytes) -> int | None: ...
    def locations(self) -> list[int]: ...
    def load(
        self,
        keys: bytes | memoryview[Any],
        lengths: array[int],
        kinds: array[int],
        offsets: array[int],
        sizes: array[int],
        segment: int,
        start: int,
        pos: int,
    ) -> tuple[int, int, int, int, int]: ...
    def __sizeof__(self) -> int: ...

def check_entries(
    keys: bytes | memoryview[Any],
    lengths: array[int] | memoryview[Any],
    kinds: array[int] | memoryview[Any],
    offsets: array[int] | memoryview[Any],
    sizes: array[int] | memoryview[Any],
    first: int,
    covered: int,
    max_key: int,
    min_size: int,
    max_size: int,
) -> None: ...
