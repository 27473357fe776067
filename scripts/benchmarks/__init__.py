"""Benchmarks (not tests): ``scripts/bench`` runs them; each module with ``main()`` is one.

Modules whose names start with ``_`` are helpers (servers started in subprocesses).
"""
