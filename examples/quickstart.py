"""Quickstart: the blocking DataStore against the default store.

The default store lives in the user data directory (on Linux ``$XDG_DATA_HOME/aiokv/default``,
usually ``~/.local/share/aiokv/default``). Run this as often as you like: it deletes the two
keys it creates, and clears them first if an earlier run was interrupted.

    python examples/quickstart.py
"""

from __future__ import annotations

import aiokv

KEY = "quickstart:user:1"
SESSION = "quickstart:session"


def main() -> None:
    # True where the C extensions are in use; False on their pure-Python twins (slower).
    print(f"aiokv {aiokv.__version__}, accelerated: {aiokv.accelerated}")
    with aiokv.DataStore() as store:  # path=None: the default store
        print(f"opened {store.path}")

        # An interrupted earlier run may have left its keys behind; start from a clean slate.
        if deleted := store.delete_many([KEY, SESSION]):
            print(f"removed {deleted} key(s) left over from an earlier run")

        store.create(KEY, {"name": "Ada Lovelace", "languages": ["en", "fr"], "admin": True})
        print(f"created {KEY!r}")

        print(f"read {KEY!r} -> {store.read(KEY)}")

        try:
            store.create(KEY, {"name": "someone else"})
        except aiokv.KeyExistsError as exc:
            print(f"create again refused: {exc}")

        # A key with a time-to-live: it would be gone 60 s from now, even across a close and
        # reopen. Deleted below all the same, so that the store is left as it was found.
        store.create(SESSION, {"user": KEY}, ttl=60)
        print(f"created {SESSION!r} with ttl=60; live: {store.exists(SESSION)}")

        store.delete(KEY)
        store.delete(SESSION)
        print(f"deleted {KEY!r} and {SESSION!r}")

        try:
            store.read(KEY)
        except aiokv.KeyNotFoundError as exc:  # also a KeyError
            print(f"read after delete: {exc}")

        print(store)
    print("closed")


if __name__ == "__main__":
    main()
