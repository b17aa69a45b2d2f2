"""Placeholder: Model, Sequential, MLP (neural-network issue)."""
from dezero.layers import Layer

__all__ = ['Model']


class Model(Layer):
    pass
