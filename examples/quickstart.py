"""Quickstart: the blocking DataStore against the default store.

The default store lives in the user data directory (on Linux ``$XDG_DATA_HOME/aiokv/default``,
usually ``~/.local/share/aiokv/default``). Run this as often as you like: it deletes what it
created, and clears a leftover key if an earlier run was interrupted.

    python examples/quickstart.py
"""

from __future__ import annotations

import aiokv

KEY = "quickstart:user:1"


def main() -> None:
    with aiokv.DataStore() as store:  # path=None: the default store
        print(f"opened {store.path}")

        # An interrupted earlier run may have left the key behind; start from a clean slate.
        try:
            store.delete(KEY)
            print(f"removed {KEY!r} left over from an earlier run")
        except aiokv.KeyNotFoundError:
            pass

        store.create(KEY, {"name": "Ada Lovelace", "languages": ["en", "fr"], "admin": True})
        print(f"created {KEY!r}")

        print(f"read {KEY!r} -> {store.read(KEY)}")

        try:
            store.create(KEY, {"name": "someone else"})
        except aiokv.KeyExistsError as exc:
            print(f"create again refused: {exc}")

        # A key with a time-to-live: gone 60 s from now, even across a close and reopen.
        session = "quickstart:session"
        try:
            store.create(session, {"user": KEY}, ttl=60)
            print(f"created {session!r} with ttl=60")
        except aiokv.KeyExistsError:
            print(f"{session!r} is still live from a run less than 60 s ago")

        store.delete(KEY)
        print(f"deleted {KEY!r}")

        try:
            store.read(KEY)
        except aiokv.KeyNotFoundError as exc:  # also a KeyError
            print(f"read after delete: {exc}")

        print(store)
    print("closed")


if __name__ == "__main__":
    main()
