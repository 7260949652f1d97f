"""Benchmarks that print figures (not pass/fail tests).

``python -m bench [--quick] [--only NAME,...]`` runs them all (see :mod:`bench.run`), writes
``bench/results/results.json`` and ``bench/results/results.md`` and refreshes the README's
"Performance" section. Each module can also run alone: ``python -m bench.compile_scaling``.
"""

import os

# As `import nmc` does when it comes first (nmc/__init__.py): the emulator runs batches on its
# own threads, and OpenBLAS's pool on top of them slows small products badly on a busy machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
