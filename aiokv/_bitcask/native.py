"""Which parts run in C: the key directory, the record check and the value codec.

Each C extension has a pure-Python twin with the same behaviour, used where the extension is
not importable (no C compiler at install; a source checkout that was never built, or built
for another Python) and everywhere when ``AIOKV_PURE_PYTHON`` is set. The twins are slower
and the key directory's takes about five times the memory, so a store that falls back without
being asked to says so, once per process, when it opens (:func:`warn_if_missing`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Final

from aiokv._bitcask.format import record
from aiokv._bitcask.index import keydir
from aiokv._core import codec

MISSING: Final = tuple(
    name
    for name, in_c in (
        ("aiokv._bitcask.index._ckeydir", keydir.IN_C),
        ("aiokv._bitcask.format._crecord", record.IN_C),
        ("aiokv._core._ccodec", codec.IN_C),
    )
    if not in_c
)
"""The C extensions whose pure-Python twin is in use."""

ACCELERATED: Final = not MISSING
"""True when every C part is in use (``aiokv.accelerated``)."""

CHOSEN: Final = bool(os.environ.get("AIOKV_PURE_PYTHON"))
"""The pure-Python parts were asked for (read at import, as the parts themselves read it)."""

_warned = False


def warn_if_missing() -> None:
    """Warn (a :class:`RuntimeWarning`, once per process) that C parts are missing, unless
    ``AIOKV_PURE_PYTHON`` chose the pure-Python ones. Called as a store opens."""
    global _warned
    if _warned or ACCELERATED or CHOSEN:
        return
    _warned = True
    package = Path(__file__).resolve().parent.parent
    cost = "slower"
    if not keydir.IN_C:
        cost += ", and the index takes about 5 times the memory"
    warnings.warn(
        f"aiokv is running without its C extensions ({', '.join(MISSING)} cannot be imported"
        f" from {package}), on their pure-Python twins: {cost}. Reinstall aiokv where a C"
        " compiler is found (or, in a source checkout, pip install -e .), or set"
        " AIOKV_PURE_PYTHON=1 to choose the pure-Python parts without this warning",
        RuntimeWarning,
        stacklevel=3,
    )
