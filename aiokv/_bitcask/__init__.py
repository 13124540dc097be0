"""The local engine: a Bitcask-style log of checksummed records in a directory.

Layers, each importing only those listed after it:

* ``store`` / ``sync``: ``AsyncDataStore`` and ``DataStore``, the lifecycle and the public
  methods of a local store;
* ``engine/``: the writer task, compaction, the open-time recovery and the TTL reaper, with
  ``Space`` the one owner of the directory's bytes and of segment and sequence numbers;
* ``native``: which of the C parts (index, record check, codec) are in use, and the warning
  when a store opens without them;
* ``index/``: the in-memory index (key hash → record location), in C with a pure twin;
* ``system/``: the operating-system seam: files, segments, the process lock, worker threads;
* ``format/``: the on-disk format, pure encode/decode with no I/O (records, hints, names).

All of it may use ``aiokv._core`` and ``aiokv.errors``; none of it imports a face.
"""
