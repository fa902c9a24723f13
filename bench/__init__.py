"""Benchmarks for the harness: each module is a script, ``python bench/<name>.py --help``."""
