"""The define-by-run engine: Config, Variable, Function and the backward pass.

Running a Function on Variables records the graph (each output remembers its creator, each Function
its inputs and weak references to its outputs); ``Variable.backward`` walks that graph in reverse
generation order. Backward formulas are written with Functions too, so with ``create_graph=True`` the
gradient computation is itself recorded and can be differentiated again; the elementwise ops write
theirs once over an operations namespace, so that without it they run on the arrays alone.

This module also holds the arithmetic ops behind Variable's operators and the two broadcast ops
(``sum_to``, ``broadcast_to``) that their gradients need; every other op lives in ``dezero.ops``.
"""
from __future__ import annotations

import contextlib
import heapq
import operator
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from dezero._checks import describe
from dezero.cuda import array_types, as_cupy, as_numpy, get_array_module


# =============================================================================
# Configuration
# =============================================================================
class Config:
    """Global switches read by the engine and by mode-dependent ops.

    ``enable_backprop``: record the graph (off inside ``no_grad()``).
    ``train``: training mode (dropout active, batch norm uses batch statistics).
    """

    enable_backprop = True
    train = True


@contextlib.contextmanager
def using_config(name: str, value: Any) -> Iterator[None]:
    """Set ``Config.<name>`` to ``value`` for the ``with`` block and restore it afterwards, also on error."""
    if not hasattr(Config, name):
        settings = ', '.join(repr(k) for k in vars(Config) if not k.startswith('_'))
        raise AttributeError(f"using_config: Config has no setting '{name}'; the settings are {settings}")
    old_value = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old_value)


def no_grad() -> contextlib.AbstractContextManager:
    """Context in which Functions compute without recording a graph."""
    return using_config('enable_backprop', False)


def test_mode() -> contextlib.AbstractContextManager:
    """Context in which ``Config.train`` is False (dropout off, batch norm uses running statistics)."""
    return using_config('train', False)


# =============================================================================
# Variable
# =============================================================================
def as_array(x: Any, array_module: Any = np) -> Any:
    """Return ``x`` unchanged when it is an array, else a 0-d (or n-d) array of ``array_module``."""
    if isinstance(x, array_types):
        return x
    return array_module.asarray(x)


class Variable:
    """A node of the graph: an array (``data``) plus its gradient and the Function that made it.

    ``data`` is a NumPy or CuPy ndarray, or None. ``grad`` is a Variable (or None) filled by
    ``backward``. ``generation`` orders the backward pass: 0 for inputs, creator's + 1 for outputs.

    Example: ``x = Variable(np.array(2.0)); y = x ** 3; y.backward(); x.grad`` → ``variable(12.0)``.
    """

    __slots__ = ('data', 'name', 'grad', 'creator', 'generation', '__weakref__')
    # Higher than ndarray's so that ``ndarray * Variable`` calls Variable.__rmul__.
    __array_priority__ = 200

    def __init__(self, data: Any, name: str | None = None) -> None:
        if data is not None and not isinstance(data, array_types):
            raise TypeError(
                f'Variable: data must be a numpy/cupy ndarray or None, got {type(data).__name__} '
                f'({data!r:.40}); wrap scalars with np.array(...)')
        self.data = data
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0

    # --- array-like properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``."""
        try:
            return self.data.shape
        except AttributeError:
            _raise_if_no_data(self, 'shape')
            raise

    @property
    def ndim(self) -> int:
        """Number of dimensions of ``data``."""
        try:
            return self.data.ndim
        except AttributeError:
            _raise_if_no_data(self, 'ndim')
            raise

    @property
    def size(self) -> int:
        """Number of elements of ``data``."""
        try:
            return self.data.size
        except AttributeError:
            _raise_if_no_data(self, 'size')
            raise

    @property
    def dtype(self) -> Any:
        """dtype of ``data``."""
        try:
            return self.data.dtype
        except AttributeError:
            _raise_if_no_data(self, 'dtype')
            raise

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        if self.data is None:
            return 'variable(None)'
        return 'variable(' + str(self.data).replace('\n', '\n' + ' ' * 9) + ')'

    # --- graph -----------------------------------------------------------------------------
    def set_creator(self, func: Function) -> None:
        """Record ``func`` as the op that produced this variable, one generation after it."""
        self.creator = func
        self.generation = func.generation + 1

    def cleargrad(self) -> None:
        """Forget the gradient (set ``grad`` to None) before a new backward pass."""
        self.grad = None

    def unchain(self) -> None:
        """Forget the creator, so backward stops at this variable."""
        self.creator = None

    def unchain_backward(self) -> None:
        """Cut every edge behind this variable (truncated backprop), iteratively."""
        if self.creator is None:
            return
        pending = [self.creator]
        seen = {id(self.creator)}
        while pending:
            func = pending.pop()
            if len(func.outputs) > 1:  # its other outputs (an LSTM step's cell) are behind too
                for ref in func.outputs:
                    y = ref()
                    if y is not None and y is not self:
                        y.creator = None
            for x in func.inputs:
                creator = x.creator
                if creator is not None:
                    if id(creator) not in seen:
                        seen.add(id(creator))
                        pending.append(creator)
                    x.creator = None

    def backward(self, retain_grad: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(x) into ``x.grad`` for every variable x the graph reaches.

        The seed is ``ones_like(data)`` unless ``self.grad`` is already set. Functions are visited once
        each, highest generation first, so a gradient is complete before it propagates. Unless
        ``retain_grad``, only leaves keep their gradient. With ``create_graph`` the backward pass is
        recorded, so gradients can be differentiated again. A variable reached several times gets
        ``x.grad + gx`` as a new Variable; no gradient a function returned or an earlier pass left is
        ever written, and only without ``create_graph`` are the third and later terms added into the
        sum this pass allocated itself (a weight shared by every step of a recurrent window then costs
        one array, not one per step).
        """
        if self.grad is None:
            if self.data is None:
                raise ValueError(f'Variable.backward: called on {_no_data(self)}')
            self.grad = Variable(get_array_module(self.data).ones_like(self.data))
        creator = self.creator
        if creator is None:
            return
        # Heap of (-generation, insertion counter, function): the counter breaks ties without
        # ever comparing Functions, and keeps the order deterministic.
        heap = [(-creator.generation, 0, creator)]
        seen = {creator}
        counter = 1
        # id(x) -> the gradient sum this pass made for x: a fresh array nobody else holds until x's
        # creator runs (after every consumer of x), so later terms are added into it in place.
        sums: dict[int, Variable] = {}
        pop, push = heapq.heappop, heapq.heappush
        old_enable = Config.enable_backprop
        Config.enable_backprop = create_graph
        try:
            while heap:
                func = pop(heap)[2]
                outputs = func.outputs
                if len(outputs) == 1:
                    y = outputs[0]()
                    gxs = func.backward(y.grad)
                    if not retain_grad:
                        y.grad = None
                else:
                    gxs = func.backward(*[_grad_of(ref) for ref in outputs])
                    if not retain_grad:
                        _drop_grads(outputs)
                if gxs.__class__ is not tuple:
                    gxs = (gxs,)
                for x, gx in zip(func.inputs, gxs):
                    if gx is None:
                        continue
                    if x.grad is None:
                        x.grad = gx
                    elif create_graph:
                        # A new Variable, never ``+=``: two gradients may share one array.
                        x.grad = x.grad + gx
                    else:  # the same sum, without an Add op when nothing is recorded
                        total, g = x.grad.data, gx.data
                        if sums.get(id(x)) is x.grad and total.shape == g.shape and total.dtype == g.dtype:
                            total += g  # (a recurrent weight's gradient: no array per time step)
                        else:
                            x.grad = sums[id(x)] = Variable(as_array(total + g))
                    x_creator = x.creator
                    if x_creator is not None and x_creator not in seen:
                        seen.add(x_creator)
                        push(heap, (-x_creator.generation, counter, x_creator))
                        counter += 1
        finally:
            Config.enable_backprop = old_enable

    # --- conversions and shape helpers (the ops live in dezero.ops) --------------------------
    def reshape(self, *shape: Any) -> Variable:
        """``reshape((2, 3))`` or ``reshape(2, 3)``."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        from dezero.ops.shape import reshape
        return reshape(self, tuple(shape))

    def transpose(self, *axes: Any) -> Variable:
        """``transpose()``, ``transpose((1, 0, 2))`` or ``transpose(1, 0, 2)``."""
        if len(axes) == 0:
            axes = None
        elif len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        from dezero.ops.shape import transpose
        return transpose(self, axes)

    @property
    def T(self) -> Variable:
        """All axes reversed (``transpose()``): ``(a, b)`` → ``(b, a)``."""
        from dezero.ops.shape import transpose
        return transpose(self)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Variable:
        """``F.sum(self, axis, keepdims)``: the sum over ``axis`` (all axes when None)."""
        from dezero.ops.reduction import sum
        return sum(self, axis, keepdims)

    def to_cpu(self) -> None:
        """Move ``data`` to the CPU (a NumPy array)."""
        if self.data is not None:
            self.data = as_numpy(self.data)

    def to_gpu(self) -> None:
        """Move ``data`` to the GPU (a CuPy array); raises RuntimeError without CuPy."""
        if self.data is not None:
            self.data = as_cupy(self.data)

    # --- operators -------------------------------------------------------------------------
    def __add__(self, other: Any) -> Variable:
        return add(self, other)

    __radd__ = __add__

    def __mul__(self, other: Any) -> Variable:
        return mul(self, other)

    __rmul__ = __mul__

    def __sub__(self, other: Any) -> Variable:
        return sub(self, other)

    def __rsub__(self, other: Any) -> Variable:
        return rsub(self, other)

    def __truediv__(self, other: Any) -> Variable:
        return div(self, other)

    def __rtruediv__(self, other: Any) -> Variable:
        return rdiv(self, other)

    def __neg__(self) -> Variable:
        return neg(self)

    def __pow__(self, other: Any) -> Variable:
        return pow(self, other)

    def __rpow__(self, other: Any) -> Variable:
        return rpow(self, other)

    def __matmul__(self, other: Any) -> Variable:
        from dezero.ops.linalg import matmul
        return matmul(self, other)

    def __rmatmul__(self, other: Any) -> Variable:
        from dezero.ops.linalg import matmul
        return matmul(other, self)

    def __getitem__(self, slices: Any) -> Variable:
        from dezero.ops.shape import get_item
        return get_item(self, slices)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy's hook for ``ndarray <op> Variable`` (and NumPy scalars on the left).

        Arithmetic goes to Variable's operators, so ``np.array(2.0) * x`` is a recorded Variable. An
        in-place update of an array (``out=`` given), ``x.data -= lr * x.grad`` as the book's steps
        28-29 write it with a Variable gradient, updates the array with the Variable's data and
        records nothing. ``==`` and ``!=`` compare identity, as for any Python object (so ``x in
        [array]`` is False), and other ufuncs (``np.exp(x)``) are refused with NumPy's ``TypeError``.
        """
        if method != '__call__':
            return NotImplemented
        if 'out' in kwargs:
            return ufunc(*[x.data if isinstance(x, Variable) else x for x in inputs], **kwargs)
        if ufunc is np.equal or ufunc is np.not_equal:
            return (inputs[0] is inputs[1]) == (ufunc is np.equal)
        names = _UFUNC_OPERATORS.get(ufunc)
        if names is None or kwargs:
            return NotImplemented
        if len(inputs) == 1:
            return getattr(inputs[0], names[0])()
        x0, x1 = inputs
        if isinstance(x0, Variable):
            return getattr(x0, names[0])(x1)
        return getattr(x1, names[1])(x0)


# NumPy ufunc -> (Variable's operator, its reflected form), for Variable.__array_ufunc__.
_UFUNC_OPERATORS = {
    np.add: ('__add__', '__radd__'), np.subtract: ('__sub__', '__rsub__'),
    np.multiply: ('__mul__', '__rmul__'), np.true_divide: ('__truediv__', '__rtruediv__'),
    np.power: ('__pow__', '__rpow__'), np.matmul: ('__matmul__', '__rmatmul__'),
    np.negative: ('__neg__', None),
}


class Parameter(Variable):
    """A Variable that a Layer owns and an optimizer updates; layers find them by this type."""

    # ``_owner``: the class name of the Layer it was first assigned to (set by Layer), so that a lazy
    # parameter used before its layer ran gets an error naming that layer.
    __slots__ = ('_owner',)


class Constant(Variable):
    """A Variable that a Function made from a raw array or scalar argument.

    Nothing outside the graph holds it, so its gradient can never be read: ops whose input-gradient
    is expensive (linear, conv) may return None for it instead of computing it.
    """

    __slots__ = ()


_new_variable = object.__new__


def _no_data(x: Variable) -> str:
    """The words for a Variable whose data is None, naming the layer of a lazy parameter."""
    name = f" '{x.name}'" if x.name else ''
    owner = getattr(x, '_owner', None)
    if owner is not None:
        return (f"the parameter{name} of a {owner} layer, which has no data yet (data is None): it is "
                "created from the input at the layer's first call, so call the layer once (or give "
                'its input size) before using the parameter')
    return f'a {type(x).__name__}{name} whose data is None (an array is needed)'


def _raise_if_no_data(x: Variable, attribute: str) -> None:
    if x.data is None:
        raise AttributeError(f'Variable.{attribute}: this is {_no_data(x)}') from None


def _check_inputs(where: str, inputs: Any) -> None:
    """Raise the clear error for the first of ``inputs`` that is not usable data: a Variable whose
    data is None, an object that is neither a Variable nor an array, or non-numeric data.

    Called only after an op has already failed (no cost on the normal path); it returns when every
    input looks fine, and the caller then re-raises the original error.
    """
    for i, x in enumerate(inputs):
        if isinstance(x, Variable):
            data = x.data
            if data is None:
                raise ValueError(f'{where}: input {i} is {_no_data(x)}') from None
        elif isinstance(x, array_types):
            data = x
        else:
            raise TypeError(f'{where}: input {i} is {describe(x)}; expected a Variable or an array') from None
        if data.dtype.kind not in 'biufc':
            raise TypeError(f'{where}: input {i} holds {describe(data)}; expected numeric data') from None


def _grad_of(ref: weakref.ref) -> Variable | None:
    y = ref()
    return None if y is None else y.grad


def _drop_grads(refs: tuple[weakref.ref, ...]) -> None:
    for ref in refs:
        y = ref()
        if y is not None:
            y.grad = None


def as_variable(obj: Any) -> Variable:
    """Return ``obj`` itself when it is a Variable, else a new Variable wrapping ``as_array(obj)``."""
    if isinstance(obj, Variable):
        return obj
    return Variable(as_array(obj))


def setup_variable() -> None:
    """Kept for the book's programs: operators are defined on Variable itself, so nothing to do."""


# =============================================================================
# Function
# =============================================================================
# Function hooks (detect_anomaly, the profiler): while one is active, dezero._hooks sets this to its
# ``call(function, inputs)``, which runs the call observed. None costs one check per call.
_call_with_hooks = None


class Function:
    """Base of every differentiable op.

    Subclasses define ``forward(*arrays)`` returning one array or a tuple, and ``backward(*gys)``
    taking and returning Variables (one per input, or None for an input that needs no gradient),
    written with Functions so that it is itself differentiable. Calling the Function on Variables,
    arrays or scalars returns one Variable, or a list when ``forward`` returns several arrays.
    """

    # Slots keep the per-call bookkeeping cheap; subclasses still get a __dict__ for their parameters.
    # Outputs are weak references (no Function <-> output cycle, so dropping the last output frees the
    # graph by reference counting); inputs are strong because backward reads them.
    __slots__ = ('inputs', 'outputs', 'generation', '__dict__', '__weakref__')

    def __call__(self, *inputs: Any) -> Any:
        if _call_with_hooks is not None:
            return _call_with_hooks(self, inputs)
        # ``try`` costs nothing until forward fails; only then are the inputs examined for the cause.
        if len(inputs) == 1:
            x = inputs[0]
            if not isinstance(x, Variable):
                x = Constant(as_array(x))
                inputs = (x,)
            try:
                ys = self.forward(x.data)
            except (TypeError, AttributeError):
                _check_inputs(getattr(self, 'name', type(self).__name__), inputs)
                raise
            generation = x.generation
        else:
            inputs = tuple([x if isinstance(x, Variable) else Constant(as_array(x)) for x in inputs])
            try:
                ys = self.forward(*[x.data for x in inputs])
            except (TypeError, AttributeError):
                _check_inputs(getattr(self, 'name', type(self).__name__), inputs)
                raise
            generation = max([x.generation for x in inputs])
        if ys.__class__ is tuple:
            return self._wrap_outputs(inputs, ys)
        # The single-output case is the hot path: the Variable is built here without __init__.
        if not isinstance(ys, array_types):
            ys = np.asarray(ys)
        output = _new_variable(Variable)
        output.data = ys
        output.name = None
        output.grad = None
        if Config.enable_backprop:
            self.generation = generation
            self.inputs = inputs
            self.outputs = (weakref.ref(output),)
            output.creator = self
            output.generation = generation + 1
        else:
            output.creator = None
            output.generation = 0
        return output

    def _wrap_outputs(self, inputs: tuple[Variable, ...], ys: tuple) -> list[Variable]:
        outputs = [Variable(as_array(y)) for y in ys]
        if Config.enable_backprop:
            self.generation = max([x.generation for x in inputs])
            for output in outputs:
                output.set_creator(self)
            self.inputs = inputs
            self.outputs = tuple(weakref.ref(output) for output in outputs)
        return outputs

    def forward(self, *xs: Any) -> Any:
        raise NotImplementedError(f'{type(self).__name__}.forward is not implemented')

    def backward(self, *gys: Variable) -> Any:
        raise NotImplementedError(f'{type(self).__name__}.backward is not implemented')


# =============================================================================
# Broadcasting: sum_to and broadcast_to are each other's gradient
# =============================================================================
def _sum_to_array(x: Any, shape: tuple[int, ...]) -> Any:
    """Sum the axes of array ``x`` that broadcasting added or stretched, giving ``shape``."""
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1)
    y = x.sum(axes, keepdims=True)
    if lead > 0:
        y = y.reshape(shape)
    return y


class SumTo(Function):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return _sum_to_array(x, self.shape)

    def backward(self, gy: Variable) -> Variable:
        return broadcast_to(gy, self.x_shape)


def sum_to(x: Any, shape: tuple[int, ...]) -> Variable:
    """Sum ``x`` down to ``shape`` (the inverse of broadcasting); ``x`` itself if already that shape."""
    shape = tuple(shape)
    if x.shape == shape:
        return as_variable(x)
    if len(shape) > x.ndim or any(n not in (1, m) for n, m in zip(shape[::-1], x.shape[::-1])):
        raise ValueError(f'sum_to: shape {x.shape} cannot be summed to {shape} '
                         f'({shape} does not broadcast to {x.shape})')
    return SumTo(shape)(x)


class BroadcastTo(Function):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy: Variable) -> Variable:
        return sum_to(gy, self.x_shape)


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Variable:
    """Broadcast ``x`` to ``shape`` like NumPy; ``x`` itself if already that shape."""
    shape = tuple(shape)
    if x.shape == shape:
        return as_variable(x)
    try:
        np.broadcast_shapes(x.shape, shape)
    except ValueError:
        raise ValueError(f'broadcast_to: cannot broadcast shape {x.shape} to {shape}') from None
    return BroadcastTo(shape)(x)


# =============================================================================
# Backward formulas run two ways. A backward must be built from differentiable ops when the backward
# pass is recorded (``create_graph=True``); when it is not, building a Function and a Variable for
# each product of a gradient is pure overhead (most of an elementwise op's backward). So such an op
# writes its gradient once, as ``formula(ops, ...)`` over a namespace ``ops``, run on Variables with
# dezero's ops when recording, else on their arrays. Operators and ``.shape`` mean the same on both.
# =============================================================================
class ArrayArithmetic:
    """The operations of a backward formula on NumPy/CuPy arrays (nothing recorded)."""

    log = np.log  # a ufunc: a CuPy array overrides it

    @staticmethod
    def sum_to(a: Any, shape: tuple[int, ...]) -> Any:
        return a if a.shape == shape else _sum_to_array(a, shape)


class VariableArithmetic:
    """The same operations as dezero's differentiable ops on Variables."""

    sum_to = staticmethod(sum_to)

    @staticmethod
    def log(x: Variable) -> Variable:
        from dezero.ops.math import log
        return log(x)


def as_gradients(grads: Any) -> Any:
    """A formula's gradient array as a Variable, or its tuple of them (None for an input needing none)."""
    if grads.__class__ is tuple:
        return tuple([None if g is None else Variable(as_array(g)) for g in grads])
    return Variable(as_array(grads))


def backward_runner(array_ops: type, variable_ops: type) -> Any:
    """``run(formula, gy, x, operand=None)`` for an elementwise op's formula: ``formula(variable_ops,
    gy, x, operand)`` when the backward is recorded, else ``formula(array_ops, ...)`` on the arrays of
    the Variables ``gy`` and ``x`` and of ``operand`` if it is one (a constant passes unchanged)."""
    def run(formula: Any, gy: Variable, x: Variable, operand: Any = None) -> Any:
        if Config.enable_backprop:
            return formula(variable_ops, gy, x, operand)
        return as_gradients(formula(array_ops, gy.data, x.data,
                                    operand.data if isinstance(operand, Variable) else operand))
    return run


run_elementwise = backward_runner(ArrayArithmetic, VariableArithmetic)


# =============================================================================
# Arithmetic. A non-Variable operand (scalar or array) is a constant: it becomes a parameter of a
# one-input op, so backward never computes a gradient nobody can read, and a scalar constant never
# needs the broadcast reduction.
# =============================================================================
def _broadcast_error(op: str, a: Any, b: Any) -> ValueError:
    """The error for operands NumPy refused to broadcast (checked only after NumPy fails: no cost
    on the normal path)."""
    shape_a, shape_b = getattr(a, 'shape', ()), getattr(b, 'shape', ())
    return ValueError(f'{op}: operands of shapes {shape_a} and {shape_b} cannot be broadcast together')


def _as_constant(value: Any, x: Variable, name: str) -> Any:
    """Give a constant operand of op ``name`` the dtype of the Variable ``x`` where sensible.

    Python and NumPy scalars, and arrays of bool/int/float, take a floating Variable's dtype, so
    float32 parameters stay float32; complex values are left to NumPy's promotion rules. Anything
    else (a str, a list, None, a non-numeric array) is a TypeError naming the op.
    """
    data = x.data
    try:
        dtype = data.dtype
    except AttributeError:  # data is None: diagnosed only after the failure, so free otherwise
        _check_inputs(name, (x,))
        raise
    floating = dtype.kind == 'f'
    if isinstance(value, (float, int)):
        return dtype.type(value) if floating else as_array(value, get_array_module(data))
    if isinstance(value, array_types):
        kind = value.dtype.kind
        if kind in 'biuf':
            return value.astype(dtype) if floating and value.dtype != dtype else value
        if kind == 'c':
            return value
    elif isinstance(value, (complex, np.number, np.bool_)):
        if floating and not isinstance(value, (complex, np.complexfloating)):
            return dtype.type(value)
        return as_array(value, get_array_module(data))
    raise TypeError(f'{name}: unsupported operand {describe(value)}; expected a Variable, a numeric '
                    'array or a number')


class _ConstantOp(Function):
    """Base of the ops with one Variable input and one constant operand ``c``."""

    def __init__(self, c: Any) -> None:
        self.c = c
        # A scalar cannot change the input's shape, so only array constants need the reduction.
        self.broadcasts = isinstance(c, array_types) and c.ndim > 0

    def backward(self, gy: Variable) -> Variable:
        return run_elementwise(self.grads, gy, self.inputs[0], self.c)


class _BinaryOp(Function):
    """Base of the ops ``x0 OP x1`` of two Variables: ``compute`` is the operator, and the gradients
    are ``grads(ops, gy, x0, x1)``."""

    def forward(self, x0: Any, x1: Any) -> Any:
        try:
            return self.compute(x0, x1)
        except ValueError:
            raise _broadcast_error(self.name, x0, x1) from None

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        x0, x1 = self.inputs
        return run_elementwise(self.grads, gy, x0, x1)


def _apply_binary(x0: Any, x1: Any, op: type, constant_op: Any, reflected_op: Any) -> Variable:
    """Run a binary op: ``op`` when both operands are Variables, else the one-input op holding the
    constant, ``constant_op(c)(x)`` for ``x OP c`` or ``reflected_op(c)(x)`` for ``c OP x``."""
    if isinstance(x0, Variable):
        if isinstance(x1, Variable):
            return op()(x0, x1)
        return constant_op(_as_constant(x1, x0, op.name))(x0)
    if isinstance(x1, Variable):
        return reflected_op(_as_constant(x0, x1, op.name))(x1)
    x0 = Constant(as_array(x0))
    return constant_op(_as_constant(x1, x0, op.name))(x0)


class Add(_BinaryOp):
    name = 'add'
    compute = operator.add

    @staticmethod
    def grads(ops: Any, gy: Any, x0: Any, x1: Any) -> tuple[Any, Any]:
        return ops.sum_to(gy, x0.shape), ops.sum_to(gy, x1.shape)


class AddConstant(_ConstantOp):
    name = 'add'  # 'sub' when it computes ``x - c`` as ``x + (-c)``, so errors name what was written

    def forward(self, x: Any) -> Any:
        try:
            return x + self.c
        except ValueError:
            raise _broadcast_error(self.name, x, self.c) from None

    def backward(self, gy: Variable) -> Variable:
        return super().backward(gy) if self.broadcasts else gy

    @staticmethod
    def grads(ops: Any, gy: Any, x: Any, c: Any) -> Any:
        return ops.sum_to(gy, x.shape)


def add(x0: Any, x1: Any) -> Variable:
    """``x0 + x1`` with NumPy broadcasting; either side may be a Variable, an array or a scalar."""
    return _apply_binary(x0, x1, Add, AddConstant, AddConstant)


class Mul(_BinaryOp):
    name = 'mul'
    compute = operator.mul

    @staticmethod
    def grads(ops: Any, gy: Any, x0: Any, x1: Any) -> tuple[Any, Any]:
        return ops.sum_to(gy * x1, x0.shape), ops.sum_to(gy * x0, x1.shape)


class MulConstant(_ConstantOp):
    name = 'mul'

    def forward(self, x: Any) -> Any:
        try:
            return x * self.c
        except ValueError:
            raise _broadcast_error(self.name, x, self.c) from None

    @staticmethod
    def grads(ops: Any, gy: Any, x: Any, c: Any) -> Any:
        return ops.sum_to(gy * c, x.shape)


def mul(x0: Any, x1: Any) -> Variable:
    """``x0 * x1`` (elementwise, broadcasting); either side may be a Variable, an array or a scalar."""
    return _apply_binary(x0, x1, Mul, MulConstant, MulConstant)


class Neg(Function):
    name = 'neg'

    def forward(self, x: Any) -> Any:
        return -x

    def backward(self, gy: Variable) -> Variable:
        return run_elementwise(self.grads, gy, gy)

    @staticmethod
    def grads(ops: Any, gy: Any, _: Any, __: None) -> Any:
        return -gy


def neg(x: Any) -> Variable:
    """``-x``."""
    return Neg()(x)


class Sub(_BinaryOp):
    name = 'sub'
    compute = operator.sub

    @staticmethod
    def grads(ops: Any, gy: Any, x0: Any, x1: Any) -> tuple[Any, Any]:
        return ops.sum_to(gy, x0.shape), ops.sum_to(-gy, x1.shape)


class RSubConstant(_ConstantOp):
    """``c - x`` for a constant ``c``."""

    name = 'sub'

    def forward(self, x: Any) -> Any:
        try:
            return self.c - x
        except ValueError:
            raise _broadcast_error(self.name, self.c, x) from None

    @staticmethod
    def grads(ops: Any, gy: Any, x: Any, c: Any) -> Any:
        return ops.sum_to(-gy, x.shape)


def _add_negated(c: Any) -> AddConstant:
    """``x - c`` is ``x + (-c)``: no separate op needed."""
    op = AddConstant(-c)
    op.name = 'sub'
    return op


def sub(x0: Any, x1: Any) -> Variable:
    """``x0 - x1`` (broadcasting); either side may be a Variable, an array or a scalar."""
    return _apply_binary(x0, x1, Sub, _add_negated, RSubConstant)


def rsub(x0: Any, x1: Any) -> Variable:
    """``x1 - x0``: the reflected subtraction behind ``2.0 - x``."""
    return sub(x1, x0)


class Div(_BinaryOp):
    name = 'div'
    compute = operator.truediv

    @staticmethod
    def grads(ops: Any, gy: Any, x0: Any, x1: Any) -> tuple[Any, Any]:
        gx0 = gy / x1
        return ops.sum_to(gx0, x0.shape), ops.sum_to(-gx0 * x0 / x1, x1.shape)


class DivConstant(_ConstantOp):
    """``x / c`` for a constant ``c``."""

    name = 'div'

    def forward(self, x: Any) -> Any:
        try:
            return x / self.c
        except ValueError:
            raise _broadcast_error(self.name, x, self.c) from None

    @staticmethod
    def grads(ops: Any, gy: Any, x: Any, c: Any) -> Any:
        return ops.sum_to(gy / c, x.shape)


class RDivConstant(_ConstantOp):
    """``c / x`` for a constant ``c``."""

    name = 'div'

    def forward(self, x: Any) -> Any:
        try:
            return self.c / x
        except ValueError:
            raise _broadcast_error(self.name, self.c, x) from None

    @staticmethod
    def grads(ops: Any, gy: Any, x: Any, c: Any) -> Any:
        return ops.sum_to(gy * (-c) / (x * x), x.shape)


def div(x0: Any, x1: Any) -> Variable:
    """``x0 / x1`` (true division, broadcasting); either side may be a Variable, an array or a scalar."""
    return _apply_binary(x0, x1, Div, DivConstant, RDivConstant)


def rdiv(x0: Any, x1: Any) -> Variable:
    """``x1 / x0``: the reflected division behind ``1.0 / x``."""
    return div(x1, x0)


class Pow(_BinaryOp):
    """``x0 ** x1`` with a Variable exponent."""

    name = 'pow'
    compute = operator.pow

    @staticmethod
    def grads(ops: Any, gy: Any, x0: Any, x1: Any) -> tuple[Any, Any]:
        gx0 = gy * x1 * x0 ** (x1 - 1)
        return ops.sum_to(gx0, x0.shape), ops.sum_to(gy * x0 ** x1 * ops.log(x0), x1.shape)


class PowConstant(_ConstantOp):
    """``x ** c`` for a constant exponent ``c`` (the book's Pow)."""

    name = 'pow'

    def forward(self, x: Any) -> Any:
        try:
            return x ** self.c
        except ValueError:
            raise _broadcast_error(self.name, x, self.c) from None

    @staticmethod
    def grads(ops: Any, gy: Any, x: Any, c: Any) -> Any:
        return ops.sum_to(gy * (x ** (c - 1) * c), x.shape)


class RPowConstant(_ConstantOp):
    """``c ** x`` for a constant base ``c``: the op behind ``2 ** x``."""

    name = 'pow'

    def forward(self, x: Any) -> Any:
        try:
            return self.c ** x
        except ValueError:
            raise _broadcast_error(self.name, self.c, x) from None

    @staticmethod
    def grads(ops: Any, gy: Any, x: Any, c: Any) -> Any:
        return ops.sum_to(gy * c ** x * np.log(c), x.shape)  # (a CuPy array overrides np.log)


def pow(x0: Any, x1: Any) -> Variable:
    """``x0 ** x1``; the exponent may be a constant (the book) or a Variable (differentiable in both)."""
    return _apply_binary(x0, x1, Pow, PowConstant, RPowConstant)


def rpow(x0: Any, x1: Any) -> Variable:
    """``x1 ** x0``: the reflected power behind ``2 ** x``."""
    return pow(x1, x0)
