"""Losses, with the book's reductions: mean_squared_error, softmax_cross_entropy, sigmoid_cross_entropy,
binary_cross_entropy.

Labels (``t``) may be arrays or Variables; they are constants and never receive a gradient. Each loss
is one fused Function whose backward is written with differentiable ops (any order works).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dezero.core import Constant, Function, Variable, _check_inputs, as_variable, sub
from dezero.cuda import array_types, get_array_module
from dezero.ops._formulas import run_backward
from dezero.ops.activation import sigmoid, softmax
from dezero.ops.math import exp, log
from dezero.ops.misc import clip
from dezero.ops.reduction import sum
from dezero.ops.shape import get_item

__all__ = ['MeanSquaredError', 'SoftmaxCrossEntropy', 'SigmoidCrossEntropy', 'BinaryCrossEntropy',
           'mean_squared_error', 'softmax_cross_entropy', 'sigmoid_cross_entropy', 'binary_cross_entropy',
           'mean_squared_error_simple', 'softmax_cross_entropy_simple']


def _check_scores(name: str, x: Any) -> None:
    if not isinstance(x, (Variable, *array_types)):
        raise TypeError(f'{name}: x must be a Variable or an array, got {type(x).__name__}')
    if x.dtype.kind != 'f':
        raise TypeError(f'{name}: x must be floating point, got dtype {x.dtype}')
    if x.ndim == 0:
        raise ValueError(f'{name}: x must have a batch axis, got a 0-d input')


def _label_array(name: str, t: Any, x: Any) -> Any:
    """The raw array of label ``t`` (array or Variable), on ``x``'s device."""
    t = t.data if isinstance(t, Variable) else t
    if not isinstance(t, array_types):
        raise TypeError(f'{name}: t must be an array or a Variable, got {type(t).__name__}')
    return get_array_module(x).asarray(t)


# =============================================================================
# Mean squared error
# =============================================================================
class MeanSquaredError(Function):
    """Fused ``sum((x0 - x1) ** 2) / len(x0 - x1)``; gradients summed back to each input shape."""

    def forward(self, x0: Any, x1: Any) -> Any:
        diff = x0 - x1
        return (diff * diff).sum() / len(diff)

    def backward(self, gy: Variable) -> tuple[Variable | None, Variable | None]:
        x0, x1 = self.inputs
        return run_backward(_squared_error_grads, gy, x0, x1, x0.__class__ is not Constant,
                            x1.__class__ is not Constant)


def _squared_error_grads(ops: Any, gy: Any, x0: Any, x1: Any, need_x0: bool,
                         need_x1: bool) -> tuple[Any, Any]:
    """Gradients of ``sum((x0 - x1) ** 2) / len(x0 - x1)``, each summed back to its input's shape."""
    diff = x0 - x1
    gx0 = diff * (gy * (2 / len(diff)))
    return (ops.sum_to(gx0, x0.shape) if need_x0 else None,
            ops.sum_to(-gx0, x1.shape) if need_x1 else None)


def mean_squared_error(x0: Any, x1: Any) -> Variable:
    """``sum((x0 - x1) ** 2) / len(x0 - x1)``: the squared error summed, divided by the batch size.

    ``x0`` and ``x1`` broadcast like NumPy (``(1, 3)`` with ``(4, 3)`` divides by 4) and each gradient
    has its input's shape. This is the book's reduction (batch size, not element count). When only one
    side is a Variable, the other (an array) takes its dtype so float32 models stay float32.
    """
    name = 'mean_squared_error'
    try:
        shape = x0.shape if x0.shape == x1.shape else np.broadcast_shapes(x0.shape, x1.shape)
    except AttributeError:
        _check_inputs(name, (x0, x1))
        raise
    except ValueError:
        raise ValueError(f'{name}: inputs of shapes {x0.shape} and {x1.shape} cannot be '
                         'broadcast together') from None
    if len(shape) == 0:
        raise ValueError(f'{name}: inputs need a batch axis, got two 0-d inputs')
    if shape != x0.shape and shape != x1.shape:
        # PyTorch warns here too: (4,) against (4, 1) gives a (4, 4) difference, rarely what was meant.
        warnings.warn(f'{name}: x0 of shape {x0.shape} and x1 of shape {x1.shape} broadcast to {shape}, '
                      'the shape of neither; the loss is taken over that broadcast (as in the book), '
                      'which is likely not what was meant: give both inputs one shape', UserWarning,
                      stacklevel=2)
    if isinstance(x0, Variable) != isinstance(x1, Variable):
        if isinstance(x0, Variable):
            x1 = x1.astype(x0.dtype, copy=False) if x1.dtype.kind in 'biuf' else x1
        else:
            x0 = x0.astype(x1.dtype, copy=False) if x0.dtype.kind in 'biuf' else x0
    return MeanSquaredError()(x0, x1)


def mean_squared_error_simple(x0: Any, x1: Any) -> Variable:
    """The book's mean squared error composed from basic ops: ``sum((x0 - x1) ** 2) / len(x0 - x1)``.

    Same shapes, broadcasting, reduction, dtype and values as ``mean_squared_error``; a 0-d Variable.
    """
    diff = sub(x0, x1)
    if diff.ndim == 0:
        raise ValueError('mean_squared_error_simple: inputs need a batch axis, got two 0-d inputs')
    return sum(diff ** 2) / len(diff)


# =============================================================================
# Softmax cross entropy
# =============================================================================
class SoftmaxCrossEntropy(Function):
    """Mean over the batch of ``-log softmax(x)[i, t_i]``; the labels are a constant attribute."""

    def __init__(self, t: Any) -> None:
        self.t = t

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        n = len(x)
        m = x.max(axis=1, keepdims=True)
        shifted = x - m  # shift by the max before the log-sum so float32 keeps its digits
        log_z = xp.log(xp.exp(shifted).sum(axis=1))
        return (log_z - shifted[xp.arange(n), self.t]).sum() / n

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        xp = get_array_module(x.data)
        n = len(x)
        onehot = xp.zeros(x.shape, dtype=x.dtype)
        onehot[xp.arange(n), self.t] = 1
        return (softmax(x, axis=1) - onehot) * (gy * (1 / n))


def softmax_cross_entropy(x: Any, t: Any) -> Variable:
    """Cross entropy of softmax scores ``x (N, C)`` against integer labels ``t (N,)``, averaged over N.

    Computed as ``logsumexp(x) - x[t]``, so scores of ±1000 give a finite, exact loss and gradient
    (``(softmax(x) - onehot(t)) / N``). Returns a 0-d Variable of ``x``'s dtype.
    """
    return SoftmaxCrossEntropy(_class_labels('softmax_cross_entropy', x, t))(x)


def softmax_cross_entropy_simple(x: Any, t: Any) -> Variable:
    """The book's softmax cross entropy composed from basic ops: ``-sum(log_p[arange(N), t]) / N``.

    ``x (N, C)`` scores, ``t (N,)`` integer labels; equal to ``softmax_cross_entropy``. The log of the
    softmax is written ``(x - m) - log(sum(exp(x - m), axis=1))`` with ``m`` the row maxima (a
    constant), so it neither overflows nor needs the book's clipping of ``p`` away from 0.
    """
    t = _class_labels('softmax_cross_entropy_simple', x, t)
    x = as_variable(x)
    xp = get_array_module(x.data)
    shifted = x - x.data.max(axis=1, keepdims=True)
    log_p = shifted - log(sum(exp(shifted), axis=1, keepdims=True))
    n = len(x)
    return -sum(get_item(log_p, (xp.arange(n), t))) / n


def _class_labels(name: str, x: Any, t: Any) -> Any:
    """The label array of ``t (N,)`` for scores ``x (N, C)``, checked to be integers in ``[0, C)``."""
    _check_scores(name, x)
    t = _label_array(name, t, x)
    if x.ndim != 2 or t.shape != (x.shape[0],):
        raise ValueError(f'{name}: x of shape {x.shape} and t of shape {t.shape} do not fit '
                         '(expected x (N, C) scores and t (N,) labels)')
    if t.dtype.kind not in 'iu':
        raise TypeError(f'{name}: t must hold integer class labels, got dtype {t.dtype}')
    if t.size and (int(t.min()) < 0 or int(t.max()) >= x.shape[1]):
        raise ValueError(f'{name}: labels must be in [0, {x.shape[1]}) for x of shape {x.shape}, got '
                         f'values in [{int(t.min())}, {int(t.max())}]')
    return t


# =============================================================================
# Binary cross entropies
# =============================================================================
def _binary_targets(name: str, x: Any, t: Any) -> Any:
    _check_scores(name, x)
    t = _label_array(name, t, x)
    if t.shape != x.shape:
        raise ValueError(f'{name}: x of shape {x.shape} and t of shape {t.shape} differ '
                         '(expected one target per element)')
    if t.dtype.kind not in 'biuf':
        raise TypeError(f'{name}: t must hold 0/1 labels or probabilities, got dtype {t.dtype}')
    return t.astype(x.dtype, copy=False)


class SigmoidCrossEntropy(Function):
    """``sum(softplus(x) - t * x) / N``: binary cross entropy of ``sigmoid(x)``, from the logits."""

    def __init__(self, t: Any) -> None:
        self.t = t

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        # softplus(x) - t*x = -(t*log sigmoid(x) + (1-t)*log(1 - sigmoid(x))), without overflow.
        loss = xp.maximum(x, 0) - x * self.t + xp.log1p(xp.exp(-xp.abs(x)))
        return loss.sum() / len(x)

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        return (sigmoid(x) - self.t) * (gy * (1 / len(x)))


def sigmoid_cross_entropy(x: Any, t: Any) -> Variable:
    """Binary cross entropy of logits ``x (N, ...)`` against targets ``t`` of the same shape (0/1 labels
    or probabilities), summed over elements and divided by N.

    Computed through log-sigmoid, so logits of ±40 give a finite, exact loss and the gradient
    ``(sigmoid(x) - t) / N`` (never a clipped zero). Returns a 0-d Variable of ``x``'s dtype.
    """
    t = _binary_targets('sigmoid_cross_entropy', x, t)
    return SigmoidCrossEntropy(t)(x)


# torch's clamp of each log term: the loss stays finite when a probability is exactly 0 or 1.
_LOG_FLOOR = -100
# torch's floor for p * (1 - p) in the gradient, for the same reason.
_GRAD_EPS = 1e-12


class BinaryCrossEntropy(Function):
    """``-sum(t log p + (1 - t) log(1 - p)) / N`` with torch's floors; the targets are an attribute."""

    def __init__(self, t: Any) -> None:
        self.t = t

    def forward(self, p: Any) -> Any:
        xp = get_array_module(p)
        t = self.t
        with np.errstate(divide='ignore'):  # log(0) = -inf, floored just below
            log_p = xp.maximum(xp.log(p), _LOG_FLOOR)
            log_q = xp.maximum(xp.log1p(-p), _LOG_FLOOR)
        return -(t * log_p + (1 - t) * log_q).sum() / len(p)

    def backward(self, gy: Variable) -> Variable:
        p = self.inputs[0]
        return (p - self.t) / clip(p * (1 - p), _GRAD_EPS, None) * (gy * (1 / len(p)))


def binary_cross_entropy(p: Any, t: Any) -> Variable:
    """Binary cross entropy of probabilities ``p (N, ...)`` in [0, 1] against targets ``t`` of the same
    shape: ``-sum(t log p + (1 - t) log(1 - p)) / N``.

    As in torch, each log is floored at -100 and ``p (1 - p)`` at 1e-12 in the gradient, so ``p`` of
    exactly 0 or 1 stays finite. Prefer ``sigmoid_cross_entropy`` on logits. Returns a 0-d Variable.
    """
    name = 'binary_cross_entropy'
    t = _binary_targets(name, p, t)
    p_data = p.data if isinstance(p, Variable) else p
    if p_data.size and (float(p_data.min()) < 0 or float(p_data.max()) > 1):
        raise ValueError(f'{name}: p must hold probabilities in [0, 1], got values in '
                         f'[{float(p_data.min())}, {float(p_data.max())}]')
    return BinaryCrossEntropy(t)(p)
