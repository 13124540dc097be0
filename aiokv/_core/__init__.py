"""The backend-neutral core: what every store behind aiokv's API shares.

The checks of keys, values and TTLs and the JSON codec (``codec``), the clock, the stats
snapshot, the ``AsyncStore`` contract every backend implements, and the blocking face that
drives any such store from threads. Nothing here knows how or where values are kept; it imports
the standard library, anyio, orjson and ``aiokv.errors`` only.
"""
