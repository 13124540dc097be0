"""The engine: the tasks and steps that change a local store, and its one read kernel.

``writer`` (the one writer task) with ``plan`` (how a batch is laid out), ``compaction``,
``recovery`` (the open), ``reaper`` (TTL expiry), ``reader`` (the read kernel), ``space``
(the one owner of the directory's bytes and numbering, and the state the parts share) and
``lifecycle`` (how the parts are wired from the open to the close).
"""
