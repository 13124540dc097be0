"""The C extensions; everything else about the package is in pyproject.toml.

Each extension has a pure-Python twin, so all three are optional: a machine without a C
compiler still installs aiokv, which then runs on the pure-Python parts (``aiokv.accelerated``
is False, and opening a store warns once). They are declared here rather than in
``[tool.setuptools] ext-modules``, which setuptools still calls experimental on every build.

``AIOKV_STRICT_BUILD=1`` (set by .ci/run) turns compiler warnings into errors and a failed
build into a failed install, rather than a quiet fallback.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

STRICT = os.environ.get("AIOKV_STRICT_BUILD", "") not in ("", "0")

# GCC and Clang: every warning they can give on these files, none of them tolerated in CI.
WARNINGS = ["-Wall", "-Wextra", *(["-Werror"] if STRICT else [])]


class BuildExt(build_ext):
    """build_ext with the warning flags above, and a failure said plainly in the build log."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "unix":  # GCC or Clang; MSVC spells these otherwise
            for ext in self.extensions:
                ext.extra_compile_args = [*WARNINGS, *ext.extra_compile_args]
        super().build_extensions()

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception:
            if ext.optional:
                print(
                    f"aiokv: the C extension {ext.name} did not build; aiokv will run on its"
                    " pure-Python twin, slower and with more memory (aiokv.accelerated is False)",
                    file=sys.stderr,
                )
            raise


setup(
    ext_modules=[
        Extension(
            "aiokv._bitcask.index._ckeydir",
            sources=["aiokv/_bitcask/index/_ckeydir.c"],
            optional=not STRICT,
        ),
        Extension(
            "aiokv._bitcask.format._crecord",
            sources=["aiokv/_bitcask/format/_crecord.c"],
            libraries=["z"],
            optional=not STRICT,
        ),
        Extension(
            "aiokv._core._ccodec",
            sources=["aiokv/_core/_ccodec.c"],
            optional=not STRICT,
        ),
    ],
    cmdclass={"build_ext": BuildExt},
)
