"""The kit the demo (``make run``) and the benchmark (``make bench``) share: child
processes of the ``paystream`` command, isolated pipelines on the local stack,
funding payers on chain, the load generator and the outcome collector.

The demo runs on a plain ``pip install paystream``, so nothing here imports a
library of the ``bench`` extra (psutil, matplotlib, orjson): those stay in
``devtools/bench/``.
"""
