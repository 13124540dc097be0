"""The global options, shared by every command, and the store they open: the local store
at ``--path`` (the default store without it), or a Redis store at ``--url``."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

import aiokv
from aiokv.cli.exits import UsageProblem

if TYPE_CHECKING:
    from aiokv.redis import RedisStore


@dataclasses.dataclass(frozen=True)
class Settings:
    """``--path`` or ``--url``, and the output mode chosen by ``--json`` / ``--human`` or by
    stdout.

    :param path: the store directory; ``None``: the default store (or ``url``'s).
    :param json: machine output (JSON, compact) rather than output for people.
    :param url: a Redis store's URL (``redis://``, ``redis+cluster://``, ...), or ``None``.
    """

    path: Path | None
    json: bool
    url: str | None = None

    @classmethod
    def chosen(cls, path: Path | None, json_flag: bool | None, url: str | None = None) -> Settings:
        if path is not None and url is not None:
            raise UsageProblem("give --path or --url, not both")
        # As redis-cli does: people at a terminal get tables, pipes and files get JSON.
        return cls(path, (not sys.stdout.isatty()) if json_flag is None else json_flag, url)

    def open_store(self) -> aiokv.DataStore | RedisStore:
        """The store, opened (a ``DataStore``, or a ``RedisStore`` with ``--url``): use it in
        ``with``, so that it is closed on every way out.

        :raises StoreLockedError: another process holds it.
        :raises StoreUnavailableError: the Redis server cannot be reached.
        """
        if self.url is None:
            return aiokv.DataStore(self.path)
        from aiokv.redis import RedisStore  # the redis extra, needed only here

        return RedisStore(self.url)


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the top-level callback stored on the context."""
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings), "the top-level callback sets them"
    return settings
