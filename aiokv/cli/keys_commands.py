"""The commands on single keys, and ``keys``: create, read, delete, touch, exists, keys."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Annotated

import typer

from aiokv.cli.exits import FAILED, UsageProblem
from aiokv.cli.output import print_json, print_json_array, print_lines
from aiokv.cli.progress import Advance, Stopwatch, count, progress, shows_progress, summary
from aiokv.cli.settings import settings_of
from aiokv.cli.values import value_from

Key = Annotated[str, typer.Argument(help="The key: 1 to 32 characters.", show_default=False)]
TTL = Annotated[
    int | None,
    # No bounds here: the store checks them, and says what they are.
    typer.Option("--ttl", metavar="N", help="Expire the key N seconds from now."),
]


def create(
    ctx: typer.Context,
    key: Key,
    value: Annotated[
        str | None,
        typer.Argument(
            metavar="[JSON|-]",
            help="The value, a JSON object; '-' or none: read it from stdin.",
            show_default=False,
        ),
    ] = None,
    ttl: TTL = None,
) -> None:
    """Store a JSON object under KEY, which must not exist yet."""
    settings = settings_of(ctx)
    parsed = value_from(value)  # read before the store is opened and locked
    with settings.open_store() as store:
        store.create(key, parsed, ttl)


def read(ctx: typer.Context, key: Key) -> None:
    """Print the value of KEY as JSON: indented for people, compact with --json."""
    settings = settings_of(ctx)
    with settings.open_store() as store:
        value = store.read(key)
    print_json(value, pretty=not settings.json)


def delete(ctx: typer.Context, key: Key) -> None:
    """Delete KEY."""
    with settings_of(ctx).open_store() as store:
        store.delete(key)


def touch(
    ctx: typer.Context,
    key: Key,
    ttl: TTL = None,
    persist: Annotated[bool, typer.Option("--persist", help="Never expire the key.")] = False,
) -> None:
    """Give KEY a new time to live (--ttl N), or none (--persist); its value is kept."""
    if (ttl is None) == (not persist):
        raise UsageProblem("touch takes one of --ttl N and --persist")
    with settings_of(ctx).open_store() as store:
        store.touch(key, ttl)


def exists(ctx: typer.Context, key: Key) -> None:
    """Exit with status 0 if KEY exists, 1 if not; print nothing."""
    with settings_of(ctx).open_store() as store:
        found = store.exists(key)
    if not found:
        raise typer.Exit(FAILED)


def keys(
    ctx: typer.Context,
    prefix: Annotated[
        str, typer.Option("--prefix", metavar="P", help="Only keys that start with P.")
    ] = "",
    limit: Annotated[
        int | None,
        typer.Option("--limit", metavar="N", min=0, help="At most N keys."),
    ] = None,
) -> None:
    """List the keys, in no set order: one a line, or a JSON array with --json."""
    settings = settings_of(ctx)
    watch = Stopwatch()
    with settings.open_store() as store:
        # The bar's total, where one is drawn: stats() counts expired keys until they are
        # reaped, and takes a SCAN of a Redis store, so it is not asked for nothing.
        drawn = not prefix and shows_progress(beside=True)
        total = store.stats().live_keys if drawn else None
        if limit is not None and total is not None:
            total = min(total, limit)
        bar = progress("keys", total, counting=True, beside=True)
        with bar as advance, store.keys(prefix) as found:
            listed = _counted(itertools.islice(found, limit), advance)
            shown = (print_json_array if settings.json else print_lines)(listed)
    summary(f"{count(shown, 'key')} in {watch.seconds()}")


def _counted(keys: Iterable[str], advance: Advance) -> Iterator[str]:
    """``keys`` as they come, telling the bar every thousand (not each: it takes a lock)."""
    pending = 0
    for key in keys:
        yield key
        pending += 1
        if pending == 1000:
            advance(pending)
            pending = 0
    advance(pending)
