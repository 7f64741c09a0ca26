"""Benchmarks: ``make bench`` runs ``python -m bench``, which prints figures (never asserts timings)."""
