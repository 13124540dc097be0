"""What the benchmark scripts of ``benchmarks/`` share, and the pieces of the longer ones.

The scripts import it as ``_bench``: run as ``python benchmarks/X.py``, a script's own folder
is the first entry of ``sys.path``.

* ``machine``, ``system``, ``output``: the machine described, child processes and directory
  sizes, the closing line and the JSON file of a run;
* ``stats``, ``text``: medians and ranges, percentiles, aligned tables;
* ``values``: the keys and the JSON values every store is given;
* ``stores``: one adapter per store ``bench_peers.py`` drives (aiokv and its peers);
* ``peers``, ``compaction``, ``core``: the measurements of ``bench_peers.py``,
  ``bench_compaction.py`` and ``bench_core.py``; ``dataset``: ``bench_core.py``'s dataset
  section.
"""
