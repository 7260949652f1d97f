"""Benchmarks that print figures (not pass/fail tests).

``python -m bench [--quick] [--only NAME,...]`` runs them all (see :mod:`bench.run`), writes
``bench/results/results.json`` and ``bench/results/results.md`` and refreshes the README's
"Performance" section. Each module can also run alone: ``python -m bench.compile_scaling``.
"""
