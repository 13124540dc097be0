"""The ``aiokv`` command: its global options and its commands, one module per group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import aiokv
from aiokv.cli.exits import HELP_TABLE
from aiokv.cli.file_commands import backup, export, import_
from aiokv.cli.keys_commands import create, delete, exists, keys, read, touch
from aiokv.cli.serve import serve
from aiokv.cli.settings import Settings
from aiokv.cli.store_commands import compact, stats, verify

app = typer.Typer(
    name="aiokv",
    help="Read and write an aiokv store from the shell.",
    epilog=HELP_TABLE,
    no_args_is_help=True,
    add_completion=False,
    # The command reports its own errors, in one line: never a traceback, rich or not.
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(shown: bool) -> None:
    if shown:
        print(f"aiokv {aiokv.__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Option(
            "--path",
            metavar="DIR",
            help="The store directory (default: the user's default store, which stats shows).",
            show_default=False,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="A Redis store instead: redis://host:port/db, rediss:// (TLS), "
            "redis+cluster://host:port (needs aiokv[redis]).",
            show_default=False,
        ),
    ] = None,
    json: Annotated[
        bool | None,
        typer.Option(
            "--json/--human",
            help="JSON for programs, or tables for people "
            "(default: --human on a terminal, --json otherwise).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    ctx.obj = Settings.chosen(path, json, url)


# In the order the help lists them: the keys, then the store, then the files, then the server.
for command in (create, read, delete, touch, exists, keys, stats, compact, verify, export):
    app.command()(command)
app.command("import")(import_)
app.command()(backup)
app.command()(serve)
