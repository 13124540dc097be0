"""The stores ``bench_peers.py`` drives, each behind the same small interface (``base``).

One module per library: aiokv, lmdb, rocksdict, diskcache, sqlite3, sqlitedict, aiosqlite and
the raw floor, and the asyncio floor (creates only). A peer that is not installed leaves its
module's library ``None``; its runners are then skipped. Each module but the asyncio floor's
also holds the code a fresh interpreter runs to reopen its store (``REOPEN_IMPORT`` and
``REOPEN_OPEN``, for ``peers.reopen``).
"""
