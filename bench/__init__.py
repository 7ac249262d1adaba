"""Benchmarks: one module per benchmark, each measuring a baseline in the same run and printing ratios against it.

`make bench` (or `.venv/bin/python -m bench`) runs them all; results go to bench/results/ (git-ignored).
"""
