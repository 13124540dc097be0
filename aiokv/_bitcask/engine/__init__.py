"""The engine: the tasks and steps that change a local store.

``writer`` (the one writer task and its batches), ``compaction``, ``recovery`` (the open),
``reaper`` (TTL expiry), ``space`` (who owns the directory's bytes and the numbering) and
``reader`` (the one read kernel).
"""
