"""``python -m aiokv``: the ``aiokv`` command."""

from aiokv.cli import main

if __name__ == "__main__":
    main()
