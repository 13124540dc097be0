"""Coverage-guided fuzzing of the decoders with atheris (libFuzzer), where atheris installs.

Run by ``test_fuzz_atheris.py`` in a subprocess; by hand::

    PYTHONPATH=tests python tests/fuzz/fuzz_atheris.py -runs=100000 -seed=1 CORPUS_DIR

The first input byte picks the decoder, the rest is its input: the same checks as the
Hypothesis fuzzing in ``test_fuzz_decoders.py`` (a sound parse re-encodes to the bytes it came
from; anything else is the decoder's one documented exception; no hang, bounded memory), but
with libFuzzer steering the inputs by the branches of ``aiokv`` they reach. An exception other
than the documented ones escapes ``one_input`` and libFuzzer reports the crashing input.

``--write-seeds DIR`` writes sound inputs for every target into ``DIR`` (a starting corpus).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["aiokv"]):
    import test_fuzz_decoders as checks

    from aiokv._bitcask.format.record import FILE_LOG, encode_delete, encode_file_header, encode_put

SELF_TEST = bool(os.environ.get("AIOKV_FUZZ_SELF_TEST"))
"""Make one input fail on purpose, to show that a failure is reported (see the test)."""

TARGETS = ("record", "record-forged-crc", "quick-put", "file-header", "hint", "hint-forged-crc")


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    target = TARGETS[data[0] % len(TARGETS)]
    offset = data[1] % 8  # records are also decoded a little way into a buffer
    buf = data[2:]
    if SELF_TEST and buf.startswith(b"AIOKVSEG"):
        raise RuntimeError("a failure planted by AIOKV_FUZZ_SELF_TEST")
    if target == "record":
        checks.check_record(buf, offset)
    elif target == "record-forged-crc":
        forged = bytearray(buf)
        checks.forge_record_crc(forged, offset)
        checks.check_record(bytes(forged), offset)
    elif target == "quick-put":
        forged = bytearray(buf)
        checks.forge_record_crc(forged)
        key = bytes(forged[28 : 28 + forged[6]]) if len(forged) >= 28 else b"k"
        checks.check_quick_put(bytes(forged), key or b"k")
    elif target == "file-header":
        checks.check_file_header(buf)
        forged = bytearray(buf)
        checks.forge_file_header_crc(forged)
        checks.check_file_header(bytes(forged))
    else:
        forged = bytearray(buf)
        if target == "hint-forged-crc":
            checks.forge_hint_crc(forged)
        checks.check_hint(bytes(forged))


def write_seeds(directory: Path) -> None:
    """Sound inputs for every target: libFuzzer mutates from these."""
    directory.mkdir(parents=True, exist_ok=True)
    put = encode_put(7, b"key", b'{"a":1}', 1.7e9, 1)
    tombstone = encode_delete(8, b"key", 3)
    hint = checks.encode_hint(
        [
            (1, b"key", 32, len(put), 7, 1.7e9, 0),
            (2, b"key", 32 + len(put), len(tombstone), 8, 0.0, 3),
        ],
        1,
        6,
        32 + len(put) + len(tombstone),
    )
    seeds = {
        "record": bytes([TARGETS.index("record"), 0]) + put,
        "tombstone": bytes([TARGETS.index("record"), 0]) + tombstone,
        "record-forged": bytes([TARGETS.index("record-forged-crc"), 0]) + put,
        "quick-put": bytes([TARGETS.index("quick-put"), 0]) + put,
        "file-header": bytes([TARGETS.index("file-header"), 0]) + encode_file_header(FILE_LOG, 5),
        "hint": bytes([TARGETS.index("hint"), 0]) + hint,
        "hint-forged": bytes([TARGETS.index("hint-forged-crc"), 0]) + hint,
    }
    for name, seed in seeds.items():
        (directory / f"seed-{name}").write_bytes(seed)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        write_seeds(Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
