"""Differentiable primitives, one family per module: forward on arrays beside its VJP."""
