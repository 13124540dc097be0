"""The sdist carries the C sources (and setup.py, which builds them) and nothing built; the
wheel carries the built extensions and none of their sources.

    python .ci/check_dist.py DIST_DIR
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

SOURCES = (
    "aiokv/_bitcask/index/_ckeydir.c",
    "aiokv/_bitcask/format/_crecord.c",
    "aiokv/_core/_ccodec.c",
)
EXTENSIONS = tuple(source.removesuffix(".c") for source in SOURCES)


def main(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as opened:
        in_wheel = opened.namelist()
    with tarfile.open(sdist) as opened:
        # Each name is under the sdist's one top folder, aiokv-<version>/.
        in_sdist = {name.partition("/")[2] for name in opened.getnames()}

    problems = [
        f"{wheel.name} carries the C source {name}" for name in in_wheel if name.endswith(".c")
    ]
    for module in EXTENSIONS:
        if not any(
            name.startswith(module + ".") and name.endswith((".so", ".pyd")) for name in in_wheel
        ):
            problems.append(f"{wheel.name} lacks the built extension {module}")
    for source in (*SOURCES, "setup.py", "pyproject.toml"):
        if source not in in_sdist:
            problems.append(f"{sdist.name} lacks {source}")
    # A module built in place (pip install -e .) must not ride along into the sdist.
    problems += [
        f"{sdist.name} carries the built {name}"
        for name in in_sdist
        if name.endswith((".so", ".pyd"))
    ]
    if problems:
        sys.exit("\n".join(problems))
    print(f"{wheel.name}: {len(EXTENSIONS)} extensions, no C source; {sdist.name}: the C sources")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
