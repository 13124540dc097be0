"""The commands on the whole store: stats, compact, verify."""

from __future__ import annotations

import typer

import aiokv
from aiokv.cli.exits import CORRUPT
from aiokv.cli.output import print_json
from aiokv.cli.progress import Stopwatch, count, progress, size, summary
from aiokv.cli.settings import settings_of


def stats(ctx: typer.Context) -> None:
    """Show the store's keys, bytes and files; --json: the StoreStats fields."""
    # rich, imported only by the commands that draw tables.
    from aiokv.cli.tables import print_stats_table, stats_object

    settings = settings_of(ctx)
    with settings.open_store() as store:
        found = store.stats()
        where = str(store.path) if isinstance(store, aiokv.DataStore) else str(settings.url)
    if settings.json:
        print_json(stats_object(found), pretty=False)
    else:
        # The command opens every store with the default cap: that is the one that applies.
        print_stats_table(found, where, aiokv.DEFAULT_MAX_SIZE)


def compact(ctx: typer.Context) -> None:
    """Reclaim the space of deleted, overwritten and expired values."""
    settings = settings_of(ctx)
    watch = Stopwatch()
    with settings.open_store() as store, progress("compact"):
        reclaimed = store.compact()
    if settings.json:
        print_json({"reclaimed_bytes": reclaimed}, pretty=False)
    summary(f"compacted: {size(reclaimed)} reclaimed in {watch.seconds()}")


def verify(ctx: typer.Context) -> None:
    """Check every record, hint and index entry; exit 4 if anything is wrong."""
    from aiokv.cli.tables import print_problems_table, verify_object

    settings = settings_of(ctx)
    watch = Stopwatch()
    with settings.open_store() as store, progress("verify"):
        report = store.verify()
    if settings.json:
        print_json(verify_object(report), pretty=False)
    else:
        print_problems_table(report)
    found = count(len(report.problems), "problem") if report.problems else "no problems"
    summary(
        f"verified {count(report.files, 'file')}, {count(report.records, 'record')}, "
        f"{size(report.bytes_checked)} in {watch.seconds()}: {found}"
    )
    if not report.ok:
        raise typer.Exit(CORRUPT)
