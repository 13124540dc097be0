"""The commands that move whole stores in and out: export, import, backup."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from aiokv import KeyExistsError
from aiokv.cli.progress import Stopwatch, count, progress, size, summary
from aiokv.cli.settings import Settings, settings_of
from aiokv.cli.streams import STDIO, copy_in, copy_out, is_stream, staging_file


def export(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(metavar="FILE|-", help="The JSON Lines file; '-': stdout.")
    ],
    prefix: Annotated[
        str, typer.Option("--prefix", metavar="P", help="Only keys that start with P.")
    ] = "",
) -> None:
    """Write the keys, values and deadlines as JSON Lines, one key a line."""
    settings = settings_of(ctx)
    watch = Stopwatch()
    if is_stream(target):
        with staging_file("export.jsonl") as staged:
            exported = _export(settings, staged, prefix)
            total = staged.stat().st_size
            # The store is closed by now: it is not held while a slow reader drains the pipe.
            with progress("writing", total, beside=True) as advance:
                copy_out(staged, target, advance)
    else:
        exported = _export(settings, Path(target), prefix)
        total = os.stat(target).st_size
    where = "stdout" if target == STDIO else target
    summary(f"exported {count(exported, 'key')}, {size(total)}, to {where} in {watch.seconds()}")


def _export(settings: Settings, path: Path, prefix: str) -> int:
    with settings.open_store() as store, progress("export"):
        return store.export_jsonl(path, prefix=prefix)


def import_(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(metavar="FILE|-", help="A file as export writes it; '-': stdin.")
    ],
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="Leave keys that exist as they are.")
    ] = False,
) -> None:
    """Create the keys of a JSON Lines file; a file with any bad line imports nothing."""
    settings = settings_of(ctx)
    watch = Stopwatch()
    if is_stream(source):
        with staging_file("import.jsonl") as staged:
            # All of it is read before the store is opened: `aiokv export - | aiokv import -`
            # works on one store too, the export letting go of it before it writes. No bar
            # meanwhile: a pipe's writer (another aiokv, say) shows its own.
            total = copy_in(source, staged)
            imported = _import(settings, staged, skip_existing)
    else:
        imported = _import(settings, Path(source), skip_existing)
        total = os.stat(source).st_size
    where = "stdin" if source == STDIO else source
    summary(f"imported {count(imported, 'key')}, {size(total)}, from {where} in {watch.seconds()}")


def _import(settings: Settings, path: Path, skip_existing: bool) -> int:
    with settings.open_store() as store, progress("import"):
        try:
            return store.import_jsonl(path, skip_existing=skip_existing)
        except KeyExistsError as exc:
            # The store's message names the Python argument; here it is an option.
            raise KeyExistsError(str(exc).replace("skip_existing=True", "--skip-existing")) from exc


def backup(
    ctx: typer.Context,
    dest: Annotated[
        Path, typer.Argument(metavar="DEST", help="A new or empty directory.", show_default=False)
    ],
) -> None:
    """Copy the store to DEST, as a store of its own; writes may go on meanwhile."""
    watch = Stopwatch()
    with settings_of(ctx).open_store() as store:
        keys = store.stats().live_keys
        with progress("backup"):
            store.backup(dest)
    copied = sum(file.stat().st_size for file in dest.rglob("*") if file.is_file())
    summary(f"backed up {count(keys, 'key')}, {size(copied)}, to {dest} in {watch.seconds()}")
