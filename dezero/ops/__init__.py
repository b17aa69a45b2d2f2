"""Differentiable ops grouped by kind; ``dezero.functions`` re-exports them flat."""
