"""Normalisation: batch_norm (also under the book's name batch_nrom) and, beyond the book, layer_norm.

Both are compositions of differentiable ops, so their gradients can be differentiated again.
"""
from __future__ import annotations

from typing import Any

from dezero.core import Config, Variable, as_variable
from dezero.cuda import array_types, get_array_module
from dezero.ops.reduction import average
from dezero.ops.shape import reshape

__all__ = ['BatchNorm', 'batch_norm', 'batch_nrom', 'layer_norm']


def _running_stat(name: str, what: str, stat: Any, channels: int) -> Any:
    """The array behind a running statistic (array or Variable), checked to be ``(channels,)``."""
    stat = stat.data if isinstance(stat, Variable) else stat
    if not isinstance(stat, array_types):
        raise TypeError(f'{name}: {what} must be an array updated in place, got {type(stat).__name__}')
    if stat.shape != (channels,):
        raise ValueError(f'{name}: {what} has shape {stat.shape}, expected ({channels},)')
    return stat


def _check_param(name: str, what: str, param: Any, size: int) -> None:
    if param is not None and tuple(param.shape) != (size,):
        raise ValueError(f'{name}: {what} has shape {tuple(param.shape)}, expected ({size},)')


def batch_norm(x: Any, gamma: Any, beta: Any, mean: Any, var: Any, decay: float = 0.9,
               eps: float = 2e-5) -> Variable:
    """Batch normalisation of ``x (N, C)`` or ``x (N, C, H, W)`` per channel, then ``* gamma + beta``.

    ``gamma``, ``beta`` (Variables or arrays) and the running statistics ``mean``, ``var`` (arrays) have
    shape ``(C,)``. In training mode (``Config.train``) x is normalised with its own statistics over axis
    0 (and H, W) -- the biased variance, as torch -- and the running statistics are updated **in place**:
    ``mean = decay * mean + (1 - decay) * batch_mean`` and ``var = decay * var + (1 - decay) * m / (m - 1)
    * batch_var`` with ``m = x.size // C`` values per channel (the unbiased estimate, as Chainer and the
    book; ``m - 1`` is taken as at least 1). In test mode the running statistics normalise instead.
    ``decay`` is torch's ``1 - momentum``. Gradients flow to x, gamma and beta in both modes.
    """
    name = 'batch_norm'
    x = as_variable(x)
    if x.ndim not in (2, 4):
        raise ValueError(f'{name}: x must be (N, C) or (N, C, H, W), got shape {x.shape}')
    channels = x.shape[1]
    _check_param(name, 'gamma', gamma, channels)
    _check_param(name, 'beta', beta, channels)
    mean = _running_stat(name, 'mean', mean, channels)
    var = _running_stat(name, 'var', var, channels)
    param_shape = (1, channels) + (1,) * (x.ndim - 2)
    if x.ndim == 4:
        gamma, beta = reshape(gamma, param_shape), reshape(beta, param_shape)

    if not Config.train:
        xp = get_array_module(x.data)
        inv_std = (1 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
        scale = gamma * inv_std.reshape(param_shape)
        shift = beta - scale * mean.astype(x.dtype, copy=False).reshape(param_shape)
        return x * scale + shift

    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    batch_mean = average(x, axes, keepdims=True)
    centred = x - batch_mean
    batch_var = average(centred * centred, axes, keepdims=True)
    y = centred * (batch_var + eps) ** -0.5 * gamma + beta

    m = x.size // channels
    adjust = m / (m - 1) if m > 1 else 1.0
    mean *= decay
    mean += (1 - decay) * batch_mean.data.reshape(channels)
    var *= decay
    var += (1 - decay) * adjust * batch_var.data.reshape(channels)
    return y


batch_nrom = batch_norm


class BatchNorm:
    """The book's ``BatchNorm(mean, var, decay, eps)(x, gamma, beta)``: ``batch_norm`` as an object
    that holds the running statistics.

    The book fuses batch normalisation into one Function; here ``batch_norm`` is a composition of
    differentiable ops (so its gradient differentiates again), and this class is the small callable
    that keeps the book's interface: ``avg_mean`` and ``avg_var`` (arrays ``(C,)``) are updated in place
    in training mode, exactly as ``batch_norm(x, gamma, beta, mean, var, decay, eps)`` does.
    """

    def __init__(self, mean: Any, var: Any, decay: float = 0.9, eps: float = 2e-5) -> None:
        self.avg_mean = mean
        self.avg_var = var
        self.decay = decay
        self.eps = eps

    def __call__(self, x: Any, gamma: Any, beta: Any) -> Variable:
        return batch_norm(x, gamma, beta, self.avg_mean, self.avg_var, self.decay, self.eps)


def layer_norm(x: Any, gamma: Any = None, beta: Any = None, eps: float = 1e-5) -> Variable:
    """Normalise ``x (..., D)`` over its last axis (biased variance), then ``* gamma + beta``.

    ``gamma`` and ``beta`` have shape ``(D,)`` or are None (no scale / no shift); the same in training
    and test mode, as ``torch.nn.functional.layer_norm(x, (D,), gamma, beta, eps)``.
    """
    name = 'layer_norm'
    x = as_variable(x)
    if x.ndim == 0:
        raise ValueError(f'{name}: x must have at least one axis, got a 0-d input')
    size = x.shape[-1]
    _check_param(name, 'gamma', gamma, size)
    _check_param(name, 'beta', beta, size)
    centred = x - average(x, -1, keepdims=True)
    y = centred * (average(centred * centred, -1, keepdims=True) + eps) ** -0.5
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y
