"""The on-disk format: every byte a store writes, encoded and decoded here, with no I/O.

``record`` holds the segment file header and the record layout, ``hint`` the hint files,
``names`` the file names; ``crc`` the checksum they all use. Nothing here imports asyncio or
touches a file, so it is tested and fuzzed synchronously.
"""
