"""The ``aiokv`` command line (extra ``aiokv[cli]``).

Only :func:`main` lives here, and it imports typer and rich when it runs: ``import aiokv.cli``
works without them, and the command says in one line how to get them.
"""

from __future__ import annotations

import sys

# Neither imports typer nor rich.
from aiokv.cli.exits import INTERRUPTED, USAGE, describe, exit_code_for

NEEDS_EXTRA = "aiokv: the command needs its extra: pip install 'aiokv[cli]'"

__all__ = ["main"]


def main() -> None:
    """Run the command with ``sys.argv`` and exit with its status (the console script)."""
    try:
        # rich is imported by the commands that draw, when they draw: it is asked for here,
        # so that a missing one is told at once, not halfway through a command.
        import rich  # noqa: F401

        from aiokv.cli.run import run
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in ("typer", "rich"):
            print(NEEDS_EXTRA, file=sys.stderr)
            sys.exit(USAGE)
        print(f"aiokv: {describe(exc)}", file=sys.stderr)
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    sys.exit(run())
