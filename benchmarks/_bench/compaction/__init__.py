"""The measurements of ``bench_compaction.py``: the size cap under churn, reopen time and
memory, read latency during compaction.

* ``common``: the sizes shared by the measurements, and the store's figures as text or JSON;
* ``report``: the checks (PASS or FAIL) and the summary table;
* ``churn``, ``reopen``, ``latency``: one module per measurement.
"""
