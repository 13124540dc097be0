"""The measurements of ``bench_peers.py``: aiokv against its peers.

* ``config``: the workloads' sizes and counts, and the settings of one run;
* ``runners``: each way of running a workload (a store, its settings, its concurrency);
* ``phases``: timing a phase over every key from threads or tasks, with every read checked;
* ``results``: a workload's rows of repeats, their medians and ratios;
* ``workloads``, ``latency``, ``reopen``: the six workloads;
* ``report``, ``targets``, ``chart``, ``document``: the summary, the targets, the chart and
  the JSON of a run; ``session``: a whole run, in order.
"""
