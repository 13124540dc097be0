"""The global options, shared by every command, and the store they open."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import typer

import aiokv


@dataclasses.dataclass(frozen=True)
class Settings:
    """``--path`` and the output mode chosen by ``--json`` / ``--human`` or by stdout.

    :param path: the store directory; ``None``: the default store.
    :param json: machine output (JSON, compact) rather than output for people.
    """

    path: Path | None
    json: bool

    @classmethod
    def chosen(cls, path: Path | None, json_flag: bool | None) -> Settings:
        # As redis-cli does: people at a terminal get tables, pipes and files get JSON.
        return cls(path, (not sys.stdout.isatty()) if json_flag is None else json_flag)

    def open_store(self) -> aiokv.DataStore:
        """The store, opened: use it in ``with``, so that it is closed on every way out.

        :raises StoreLockedError: another process holds it.
        """
        return aiokv.DataStore(self.path)


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the top-level callback stored on the context."""
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings), "the top-level callback sets them"
    return settings
