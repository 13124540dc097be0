"""The dataset section of ``bench_core.py``: aiokv's calls that move many keys at once.

* ``common``: the settings, a part's figures and ratios, fresh stores and the checks;
* ``batch``: ``create_many`` against 100-task ``await create``, ``read_many`` against
  ``await read``, flat and nested values;
* ``iterate``: ``keys()`` and ``items()`` of a large store against an lmdb cursor;
* ``jsonl``: ``export_jsonl`` and ``import_jsonl``, MB/s of file;
* ``backup``: ``backup`` of a large store on the same file system;
* ``report``: the parts run in order, their tables and their JSON.
"""
