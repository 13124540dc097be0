"""The walk of a value before it is encoded, in C: see
:func:`aiokv._core.codec._least_json_size_py`, whose results it gives."""

from typing import Any

def least_json_size(value: dict[Any, Any], /) -> tuple[int, int]: ...
def encode_plain(value: dict[Any, Any], /) -> bytes | tuple[int, int]: ...
