"""Benchmarks of tinynet's convolution family and an MLP step: `python -m benchmarks`.

See benchmarks/README.md for what is measured and the last measured table.
"""
