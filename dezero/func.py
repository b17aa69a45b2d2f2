"""Derivatives as functions that compose: ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``jacobian``,
``hessian``, ``hvp``, and ``functional_call`` to run a Layer with parameters given as arguments.

Each transform takes a function ``f`` of arrays or Variables and returns a new function (or, for
``vjp``/``jvp``/``hvp``, evaluates at given points), built on ``Variable.backward(create_graph=...)``:
there is no second engine. The returned functions can be transformed again, to any order:
``grad(grad(grad(f)))`` is the third derivative.

The contract:

- **Inputs.** A differentiated argument is a floating-point array, a Python or NumPy float, a
  Variable, or a tuple/list/dict of them (nested; the gradient has the same structure). Other
  arguments (labels, layers, options) and keyword arguments are passed to ``f`` untouched.
- **Outputs: arrays in, arrays out; Variables in, Variables out.** When any argument is a Variable, or
  when the call happens inside another transform (a closure differentiated from outside), results are
  Variables on a graph (the backward passes run with ``create_graph=True``) so that they can be
  differentiated further. Otherwise they are plain arrays and no graph is kept.
- **No gradients left behind.** A transform never writes ``.grad`` on anything of the caller's: each
  differentiated array becomes a fresh leaf, each differentiated Variable a fresh copy linked to it
  (so an outer derivative still flows through), and the backward passes run on the part of the graph
  between those copies and ``f``'s output, cut out for the duration (see ``_Subgraph``). A closed-over
  Parameter, or one not among ``argnums``, ends with the ``.grad`` it had before; no ``cleargrad``
  needed.
- **Errors** name the transform and what was received: a non-scalar output for ``grad``/``hvp``, an
  output that is not a Variable or array, ``argnums`` out of range.

Cost: the gradient of ``f: R^n -> R`` is one forward and one backward pass; ``jacobian`` runs one
backward pass per output element (rows), ``hessian`` one per input element on top of a gradient
computed with ``create_graph=True``; ``jvp`` and ``hvp`` are two backward passes each (``jvp`` by
the double-vjp construction: exact, not finite differences).

Example::

    >>> import numpy as np
    >>> import dezero.functions as F
    >>> from dezero.func import grad
    >>> f = lambda x: F.sin(x)
    >>> [float(grad(g)(np.array(0.0))) for g in (f, grad(f), grad(grad(f)))]
    [1.0, -0.0, -1.0]
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from dezero.core import Constant, Function, Variable, using_config
from dezero.cuda import array_types, get_array_module
from dezero.layers.base import Layer
from dezero.ops.misc import stack
from dezero.ops.reduction import sum as _sum

__all__ = ['grad', 'value_and_grad', 'vjp', 'jvp', 'jacobian', 'hessian', 'hvp', 'functional_call']

Argnums = int | tuple[int, ...]


# =============================================================================
# Nested containers (tuples, lists, dicts) of arrays
# =============================================================================
def _leaves(tree: Any) -> list[Any]:
    """The leaves of nested tuples, lists and dicts, depth first (dicts in insertion order)."""
    if type(tree) in (tuple, list):
        return [leaf for item in tree for leaf in _leaves(item)]
    if isinstance(tree, dict):
        return [leaf for item in tree.values() for leaf in _leaves(item)]
    return [tree]


def _rebuild(tree: Any, leaves: Iterator[Any]) -> Any:
    """``tree`` with its leaves replaced, in ``_leaves`` order, by the items of ``leaves``."""
    if type(tree) in (tuple, list):
        return type(tree)(_rebuild(item, leaves) for item in tree)
    if isinstance(tree, dict):
        return {key: _rebuild(item, leaves) for key, item in tree.items()}
    return next(leaves)


def _any_variable(*trees: Any) -> bool:
    return any(isinstance(leaf, Variable) for tree in trees for leaf in _leaves(tree))


# =============================================================================
# The graph machinery: fresh inputs, a cut-out subgraph, one backward pass per cotangent
# =============================================================================
class _Nesting:
    """How many transformed calls are running; inside one, results stay Variables (see the contract)."""

    depth = 0


@contextlib.contextmanager
def _transforming() -> Iterator[None]:
    _Nesting.depth += 1
    try:
        # A transform needs the graph even when called under no_grad().
        with using_config('enable_backprop', True):
            yield
    finally:
        _Nesting.depth -= 1


def _differentiable(*trees: Any) -> bool:
    """Whether results must be Variables on a graph: a Variable argument, or a call inside a transform."""
    return _Nesting.depth > 0 or _any_variable(*trees)


class _Copy(Function):
    """``y = x``: the transform's own node for a caller's Variable. The gradient lands on the copy,
    the caller's Variable keeps its ``.grad``, and an outer derivative still flows through the copy."""

    def forward(self, x: Any) -> Any:
        return x

    def backward(self, gy: Variable) -> Variable:
        return gy


class _Seed(Function):
    """The root of one backward pass over ``f``'s outputs: hands each output its cotangent.

    Its value is unused; its backward returns the cotangents themselves, so when they are Variables the
    gradients stay linked to them (what ``jvp`` differentiates).
    """

    def __init__(self, cotangents: list[Variable]) -> None:
        self.cotangents = cotangents

    def forward(self, *ys: Any) -> Any:
        return get_array_module(ys[0]).zeros((), ys[0].dtype)

    def backward(self, gy: Variable) -> tuple[Variable, ...]:
        return tuple(self.cotangents)


class _Subgraph:
    """The part of the graph between ``inputs`` and ``outputs``, cut out while the ``with`` block lasts.

    Every Variable that feeds this part from outside (a closed-over Parameter, a constant, a node of an
    outer transform's graph) and every input has its ``creator`` and ``grad`` set aside on entry and put
    back on exit, also on error. Backward passes inside the block therefore visit only Functions that
    depend on the inputs and stop at the cut; ``grads`` reads the inputs' gradients and clears whatever
    the pass wrote. Outputs are Variables (arrays are constants and need no cut).
    """

    def __init__(self, outputs: list[Variable], inputs: list[Variable]) -> None:
        self.outputs = outputs
        self.inputs = inputs
        input_ids = {id(x) for x in inputs}
        reached, order = set(), []
        pending = [y.creator for y in outputs if id(y) not in input_ids and y.creator is not None]
        while pending:
            func = pending.pop()
            if func in reached:
                continue
            reached.add(func)
            order.append(func)
            for x in func.inputs:
                if x.creator is not None and id(x) not in input_ids and x.creator not in reached:
                    pending.append(x.creator)
        # A Function's generation exceeds those of the Functions behind it: this order is topological.
        order.sort(key=lambda func: func.generation)
        needed = set()
        for func in order:
            if any(id(x) in input_ids or x.creator in needed for x in func.inputs):
                needed.add(func)
        cut = {}
        for func in needed:
            for x in func.inputs:
                if id(x) not in input_ids and x.creator not in needed:
                    cut[id(x)] = x
        for y in outputs:
            if id(y) not in input_ids and y.creator not in needed:
                cut[id(y)] = y
        self.live = any(id(y) in input_ids or y.creator in needed for y in outputs)
        self.cut = list(cut.values())
        self.saved: list[tuple[Variable, Any, Any]] = []

    def __enter__(self) -> _Subgraph:
        self.saved = [(v, v.creator, v.grad) for v in self.cut + self.inputs]
        for v in self.cut + self.inputs:
            v.creator = None
            v.grad = None
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for v, creator, grad in self.saved:
            v.creator = creator
            v.grad = grad

    def grads(self, cotangents: list[Variable], create_graph: bool) -> list[Variable | None]:
        """One backward pass seeded with ``cotangents`` (one per output): the gradient of
        ``sum_k <outputs[k], cotangents[k]>`` for each input, or None where it does not depend on it."""
        if not self.live:
            return [None] * len(self.inputs)
        root = _Seed(cotangents)(*self.outputs)
        root.backward(create_graph=create_graph)
        grads = [x.grad for x in self.inputs]
        for v in self.cut + self.inputs:
            v.grad = None
        return grads


class _Inputs:
    """The differentiated arguments of one call: their structures and the fresh Variables standing for
    their leaves, which ``args`` holds in their place."""

    def __init__(self, name: str, args: Sequence[Any], argnums: Argnums) -> None:
        positions = _positions(name, argnums, len(args))
        self.as_tuple = isinstance(argnums, tuple)
        self.args = list(args)
        self.trees, self.variables = [], []
        for i in positions:
            tree = args[i]
            fresh = [_fresh_input(name, leaf, i) for leaf in _leaves(tree)]
            if not fresh:
                raise ValueError(f'{name}: argument {i} is an empty {type(tree).__name__}; there is '
                                 'nothing to differentiate')
            self.args[i] = _rebuild(tree, iter(fresh))
            self.trees.append(tree)
            self.variables.extend(fresh)

    def pack(self, flat: list[Any]) -> Any:
        """Values for the leaves, in order, arranged like the arguments (a tuple when argnums was)."""
        values = iter(flat)
        structures = [_rebuild(tree, values) for tree in self.trees]
        return tuple(structures) if self.as_tuple else structures[0]

    def fill(self, grads: list[Variable | None], differentiable: bool) -> list[Any]:
        """Gradients as results: zeros where None, arrays unless ``differentiable``."""
        return [_result(_zeros_like(x) if g is None else g, differentiable)
                for g, x in zip(grads, self.variables)]


def _fresh_input(name: str, leaf: Any, position: int) -> Variable:
    """A new leaf Variable for an array, a linked copy for a Variable (see ``_Copy``)."""
    if isinstance(leaf, Variable):
        data = leaf.data
    elif isinstance(leaf, (float, np.floating)):
        data = np.asarray(leaf)
    elif isinstance(leaf, array_types):
        data = leaf
    else:
        raise TypeError(f'{name}: argument {position} must be a floating-point array, a Variable, or a '
                        f'tuple/list/dict of them, got {type(leaf).__name__}')
    if data is None or data.dtype.kind != 'f':
        what = 'data None' if data is None else f'dtype {data.dtype}'
        raise TypeError(f'{name}: argument {position} must hold floating-point values to be '
                        f'differentiated, got {type(leaf).__name__} with {what}')
    return _Copy()(leaf) if isinstance(leaf, Variable) else Variable(data)


def _check_argnums(name: str, argnums: Any) -> None:
    ints = argnums if isinstance(argnums, tuple) else (argnums,)
    if not ints or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ints):
        raise TypeError(f'{name}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}')
    if len(set(ints)) != len(ints):
        raise ValueError(f'{name}: argnums {argnums!r} repeats a position')


def _positions(name: str, argnums: Argnums, n_args: int) -> list[int]:
    ints = argnums if isinstance(argnums, tuple) else (argnums,)
    bad = [i for i in ints if not -n_args <= i < n_args]
    if bad:
        raise ValueError(f'{name}: argnums={argnums!r} is out of range for a function called with '
                         f'{n_args} positional argument{"s" if n_args != 1 else ""}')
    positions = [int(i) % n_args for i in ints]
    if len(set(positions)) != len(positions):
        raise ValueError(f'{name}: argnums {argnums!r} names the same argument twice')
    return positions


def _check_callable(name: str, f: Any) -> None:
    if not callable(f):
        raise TypeError(f'{name}: f must be callable, got {type(f).__name__}')


def _call(name: str, f: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any],
          has_aux: bool) -> tuple[Any, Any]:
    """Run ``f``; return ``(output, aux)`` (aux None without ``has_aux``)."""
    out = f(*args, **kwargs)
    if not has_aux:
        return out, None
    if type(out) not in (tuple, list) or len(out) != 2:
        raise TypeError(f'{name}: with has_aux=True, f must return a pair (output, aux), got '
                        f'{_describe(out)}')
    return out[0], out[1]


def _describe(value: Any) -> str:
    if isinstance(value, (Variable,) + array_types):
        return f'a {type(value).__name__} of shape {tuple(value.shape)}'
    if type(value) in (tuple, list):
        return f'a {type(value).__name__} of length {len(value)}'
    return f'{type(value).__name__} {value!r:.40}'


def _as_output(name: str, value: Any) -> Variable:
    """``f``'s output as a Variable: an array or NumPy scalar becomes a constant (zero derivative)."""
    if isinstance(value, Variable):
        return value
    if isinstance(value, array_types + (np.generic,)) and not isinstance(value, np.bool_):
        return Variable(np.asarray(value) if isinstance(value, np.generic) else value)
    raise TypeError(f'{name}: f must return a Variable or an array, got {_describe(value)}')


def _output_leaves(name: str, out: Any) -> list[Variable]:
    """The leaves of ``f``'s output (one Variable, or a tuple/list/dict of them) as Variables."""
    leaves = _leaves(out)
    if not leaves:
        raise TypeError(f'{name}: f must return a Variable, an array, or a tuple/list/dict of them, '
                        f'got an empty {type(out).__name__}')
    return [_as_output(name, leaf) for leaf in leaves]


def _scalar_output(name: str, out: Any) -> Variable:
    y = _as_output(name, out)
    if y.shape != ():
        raise ValueError(f'{name}: f must return a scalar (shape ()), got a {type(out).__name__} of '
                         f'shape {tuple(y.shape)}; reduce it (F.sum) or use vjp/jacobian')
    return y


def _result(value: Any, differentiable: bool) -> Any:
    """A Variable for a caller that differentiates further, else its array; containers recursively."""
    if isinstance(value, Variable):
        return value if differentiable else value.data
    if type(value) in (tuple, list) or isinstance(value, dict):
        return _rebuild(value, iter([_result(leaf, differentiable) for leaf in _leaves(value)]))
    return value


def _zeros_like(x: Variable) -> Variable:
    return Variable(get_array_module(x.data).zeros_like(x.data))


def _ones_like(x: Variable) -> Variable:
    return Variable(get_array_module(x.data).ones_like(x.data))


def _cotangent(name: str, value: Any, like: Variable, what: str) -> Variable:
    """A cotangent or tangent for ``like``: same shape, cast to its dtype when it is an array."""
    if isinstance(value, (float, np.floating)):
        value = np.asarray(value)
    if not isinstance(value, (Variable,) + array_types):
        raise TypeError(f'{name}: {what} must be an array or a Variable, got {_describe(value)}')
    if tuple(value.shape) != tuple(like.shape):
        raise ValueError(f'{name}: {what} has shape {tuple(value.shape)}, expected {tuple(like.shape)}')
    if isinstance(value, Variable):
        return value
    return Variable(value.astype(like.dtype, copy=False))


def _matching(name: str, values: Any, likes: list[Variable], what: str) -> list[Variable]:
    leaves = _leaves(values)
    if len(leaves) != len(likes):
        raise ValueError(f'{name}: expected {len(likes)} {what}{"s" if len(likes) != 1 else ""} '
                         f'(one per {"output" if what == "cotangent" else "primal"} array), '
                         f'got {len(leaves)}')
    return [_cotangent(name, v, like, f'{what} {k}') for k, (v, like) in enumerate(zip(leaves, likes))]


def _check_point(name: str, f: Any, primals: Any, tangents: Any) -> bool:
    """Check jvp's and hvp's arguments; return whether the results must be Variables."""
    _check_callable(name, f)
    for what, value in (('primals', primals), ('tangents', tangents)):
        if type(value) not in (tuple, list):
            raise TypeError(f'{name}: {what} must be a tuple or list (one entry per argument of f), got '
                            f'{type(value).__name__}')
    return _differentiable(primals, tangents)


def _point(name: str, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[_Inputs, list[Variable]]:
    """Fresh inputs for the primals, and the tangents matched to them (inside ``_transforming``)."""
    inputs = _Inputs(name, tuple(primals), tuple(range(len(primals))))
    return inputs, _matching(name, tangents, inputs.variables, 'tangent')


def _gradient_along(grads: list[Variable | None], vs: list[Variable], targets: list[Variable],
                    create_graph: bool) -> list[Variable | None]:
    """The gradient of ``sum_k <grads[k], vs[k]>`` with respect to each of ``targets`` (grads computed
    with ``create_graph=True``); all None when every grad is None."""
    along = None
    for g, v in zip(grads, vs):
        if g is not None:
            term = _sum(g * v)
            along = term if along is None else along + term
    if along is None:
        return [None] * len(targets)
    with _Subgraph([along], targets) as subgraph:
        return subgraph.grads([_ones_like(along)], create_graph=create_graph)


# =============================================================================
# The transforms
# =============================================================================
def value_and_grad(f: Callable[..., Any], argnums: Argnums = 0,
                   has_aux: bool = False) -> Callable[..., tuple[Any, Any]]:
    """``f`` → a function returning ``(f(*args), gradient)`` from one forward and one backward pass.

    ``f`` must return a scalar (shape ``()``); the gradient has the structure of the argument(s) at
    ``argnums`` (an int, or a tuple giving a tuple of gradients), each leaf of the shape of its input.
    With ``has_aux``, ``f`` returns ``(output, aux)`` and the result is ``((value, aux), gradient)``.

    Example::

        >>> import numpy as np
        >>> from dezero.func import value_and_grad
        >>> value, g = value_and_grad(lambda x: (x ** 2).sum())(np.array([1.0, 2.0]))
        >>> float(value), g
        (5.0, array([2., 4.]))
    """
    return _value_and_grad('value_and_grad', f, argnums, has_aux)


def grad(f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False) -> Callable[..., Any]:
    """``f`` → its gradient function: ``grad(f)(x)`` is df/dx, with the shape (structure) of ``x``.

    ``f`` returns a scalar (shape ``()``). ``argnums`` picks the arguments (an int, or a tuple giving
    a tuple of gradients); arguments may be arrays, Variables or dicts of them such as a model's
    parameters (see ``functional_call``). With ``has_aux``, ``f`` returns ``(output, aux)`` and the
    result is ``(gradient, aux)``. Composes: ``grad(grad(f))`` is the second derivative.

    Example::

        >>> import numpy as np
        >>> from dezero.func import grad
        >>> f = lambda x, y: (x * y ** 2).sum()
        >>> grad(f, argnums=(0, 1))(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
        (array([ 9., 16.]), array([ 6., 16.]))
        >>> float(grad(grad(lambda x: x ** 3))(np.array(2.0)))  # 6x
        12.0
    """
    value_and_grad_f = _value_and_grad('grad', f, argnums, has_aux)

    @functools.wraps(f)
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        value, gradient = value_and_grad_f(*args, **kwargs)
        return (gradient, value[1]) if has_aux else gradient

    return grad_f


def _value_and_grad(name: str, f: Callable[..., Any], argnums: Argnums,
                    has_aux: bool) -> Callable[..., tuple[Any, Any]]:
    _check_callable(name, f)
    _check_argnums(name, argnums)

    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        differentiable = _differentiable(args, kwargs)
        with _transforming():
            inputs = _Inputs(name, args, argnums)
            out, aux = _call(name, f, inputs.args, kwargs, has_aux)
            y = _scalar_output(name, out)
            with _Subgraph([y], inputs.variables) as subgraph:
                grads = subgraph.grads([_ones_like(y)], create_graph=differentiable)
        value = _result(y, differentiable)
        if has_aux:
            value = (value, _result(aux, differentiable))
        return value, inputs.pack(inputs.fill(grads, differentiable))

    return value_and_grad_f


def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """Evaluate ``f(*primals)`` and return ``(output, vjp_fn)`` (``(output, vjp_fn, aux)`` with
    ``has_aux``), as ``torch.func.vjp``.

    ``vjp_fn(cotangents)`` takes cotangents shaped like the output (one array for one output, the same
    tuple/list/dict structure for several) and returns a tuple with one entry per primal:
    ``sum_k cotangent_k · d output_k / d primal``, i.e. ``v^T J``. Each call is one backward pass over
    the graph recorded once; ``vjp_fn`` may be called many times.

    Example::

        >>> import numpy as np
        >>> import dezero.functions as F
        >>> from dezero.func import vjp
        >>> y, vjp_fn = vjp(F.sin, np.array([0.0, np.pi]))
        >>> vjp_fn(np.array([1.0, 2.0]))  # cos(x) * v
        (array([ 1., -2.]),)
    """
    name = 'vjp'
    _check_callable(name, f)
    differentiable = _differentiable(primals)
    if not primals:
        raise TypeError(f'{name}: expected at least one primal after f, got none')
    with _transforming():
        inputs = _Inputs(name, primals, tuple(range(len(primals))))
        out, aux = _call(name, f, inputs.args, {}, has_aux)
        outputs = _output_leaves(name, out)

    def vjp_fn(cotangents: Any) -> tuple[Any, ...]:
        differentiable_here = differentiable or _differentiable(cotangents)
        cts = _matching(name, cotangents, outputs, 'cotangent')
        with _transforming(), _Subgraph(outputs, inputs.variables) as subgraph:
            grads = subgraph.grads(cts, create_graph=differentiable_here)
        return inputs.pack(inputs.fill(grads, differentiable_here))

    output = _result(_rebuild(out, iter(outputs)), differentiable)
    if has_aux:
        return output, vjp_fn, _result(aux, differentiable)
    return output, vjp_fn


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> tuple[Any, ...]:
    """The Jacobian-vector product ``J v`` of ``f`` at ``primals`` along ``tangents``, as
    ``torch.func.jvp``: returns ``(f(*primals), jvp_out)`` (and ``aux`` third with ``has_aux``).

    ``primals`` and ``tangents`` are tuples (one entry per argument of ``f``, same shapes); ``jvp_out``
    has the structure of ``f``'s output. Computed exactly by the double-vjp construction:
    ``u ↦ u^T J`` is linear in a dummy cotangent ``u``, so ``J v = d/du <u^T J, v>`` (two backward
    passes, the first with ``create_graph=True``).

    Example::

        >>> import numpy as np
        >>> import dezero.functions as F
        >>> from dezero.func import jvp
        >>> y, t = jvp(lambda x: x ** 2, (np.array([1.0, 3.0]),), (np.array([1.0, 0.5]),))
        >>> t  # 2 x v
        array([2., 3.])
    """
    name = 'jvp'
    differentiable = _check_point(name, f, primals, tangents)
    with _transforming():
        inputs, vs = _point(name, primals, tangents)
        out, aux = _call(name, f, inputs.args, {}, has_aux)
        outputs = _output_leaves(name, out)
        dummies = [_zeros_like(y) for y in outputs]
        with _Subgraph(outputs, inputs.variables) as subgraph:
            vjps = subgraph.grads(dummies, create_graph=True)
        tangents_out = _gradient_along(vjps, vs, dummies, differentiable)
    tangents_out = [_result(_zeros_like(y) if t is None else t, differentiable)
                    for t, y in zip(tangents_out, outputs)]
    result = (_result(_rebuild(out, iter(outputs)), differentiable), _rebuild(out, iter(tangents_out)))
    return (*result, _result(aux, differentiable)) if has_aux else result


def hvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """The Hessian-vector product ``H v`` of a scalar ``f`` at ``primals`` along ``tangents``, without
    forming ``H``: returns ``(f(*primals), hvp_out)`` with ``hvp_out`` a tuple, one entry per primal
    (the convention of ``torch.autograd.functional.hvp`` with tuple inputs).

    Reverse over reverse: the gradient ``g`` with ``create_graph=True``, then the gradient of
    ``<g, v>``: two backward passes whatever the dimension.

    Example::

        >>> import numpy as np
        >>> from dezero.func import hvp
        >>> value, (hv,) = hvp(lambda x: (x ** 3).sum(), (np.array([1.0, 2.0]),), (np.array([1.0, 1.0]),))
        >>> hv  # diag(6x) v
        array([ 6., 12.])
    """
    name = 'hvp'
    differentiable = _check_point(name, f, primals, tangents)
    with _transforming():
        inputs, vs = _point(name, primals, tangents)
        y = _scalar_output(name, _call(name, f, inputs.args, {}, False)[0])
        with _Subgraph([y], inputs.variables) as subgraph:
            grads = subgraph.grads([_ones_like(y)], create_graph=True)
        products = _gradient_along(grads, vs, inputs.variables, differentiable)
    return _result(y, differentiable), inputs.pack(inputs.fill(products, differentiable))


def jacobian(f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False) -> Callable[..., Any]:
    """``f`` → its Jacobian function, in reverse mode (as ``torch.func.jacrev``).

    For an output of shape ``S`` and an input of shape ``I`` the Jacobian has shape ``S + I``:
    ``J[s, i] = d out[s] / d x[i]``, computed with one backward pass per output element. A tuple
    ``argnums`` gives a tuple of Jacobians, a tuple/list/dict output the same structure holding, for
    each output array, its Jacobian(s). With ``has_aux``, ``f`` returns ``(output, aux)`` and the result
    is ``(jacobian, aux)``.

    Example::

        >>> import numpy as np
        >>> from dezero.func import jacobian
        >>> W = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        >>> J = jacobian(lambda x: W @ x ** 2)(np.array([1.0, 1.0, 2.0]))  # W diag(2x): (2, 3)
        >>> J
        array([[ 2.,  4., 12.],
               [ 8., 10., 24.]])
    """
    return _jacobian('jacobian', f, argnums, has_aux)


def hessian(f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False) -> Callable[..., Any]:
    """``f`` → its Hessian function: the Jacobian of the Jacobian (reverse over reverse).

    For a scalar ``f`` of an input of shape ``I`` the Hessian has shape ``I + I``; a tuple ``argnums``
    gives nested tuples ``H[i][j] = d2 f / d x_i d x_j``, as ``torch.func.hessian``. It costs one
    gradient with ``create_graph=True`` plus one backward pass per input element.

    Example::

        >>> import numpy as np
        >>> from dezero.func import hessian
        >>> hessian(lambda x: x[0] ** 2 * x[1])(np.array([1.0, 3.0]))  # [[2 x1, 2 x0], [2 x0, 0]]
        array([[6., 2.],
               [2., 0.]])
    """
    return _jacobian('hessian', _jacobian('hessian', f, argnums, has_aux), argnums, has_aux)


def _jacobian(name: str, f: Callable[..., Any], argnums: Argnums, has_aux: bool) -> Callable[..., Any]:
    _check_callable(name, f)
    _check_argnums(name, argnums)

    @functools.wraps(f)
    def jacobian_f(*args: Any, **kwargs: Any) -> Any:
        differentiable = _differentiable(args, kwargs)
        with _transforming():
            inputs = _Inputs(name, args, argnums)
            out, aux = _call(name, f, inputs.args, kwargs, has_aux)
            outputs = _output_leaves(name, out)
            per_output = [inputs.pack(_jacobian_rows(y, inputs.variables, differentiable))
                          for y in outputs]
        result = _rebuild(out, iter(per_output))
        return (result, _result(aux, differentiable)) if has_aux else result

    return jacobian_f


def _jacobian_rows(y: Variable, inputs: list[Variable], differentiable: bool) -> list[Any]:
    """``d y / d x`` of shape ``y.shape + x.shape`` for each input x: one backward pass per element."""
    xp = get_array_module(y.data)
    rows: list[list[Any]] = [[] for _ in inputs]
    with _Subgraph([y], inputs) as subgraph:
        for k in range(y.size):
            basis = xp.zeros(y.size, y.dtype)
            basis[k] = 1
            grads = subgraph.grads([Variable(basis.reshape(y.shape))], create_graph=differentiable)
            for row, g, x in zip(rows, grads, inputs):
                row.append(_result(_zeros_like(x) if g is None else g, differentiable))
    jacobians = []
    for row, x in zip(rows, inputs):
        shape = tuple(y.shape) + tuple(x.shape)
        if not row:
            jacobians.append(_result(Variable(xp.zeros(shape, x.dtype)), differentiable))
        elif differentiable:
            jacobians.append(stack(row).reshape(shape))
        else:
            jacobians.append(xp.stack(row).reshape(shape))
    return jacobians


# =============================================================================
# Models as functions
# =============================================================================
def functional_call(model: Layer, params: Mapping[str, Any], *inputs: Any, strict: bool = True,
                    **kwargs: Any) -> Any:
    """Run ``model(*inputs, **kwargs)`` with the values in ``params`` in place of its Parameters.

    ``params`` maps parameter paths, as in ``model.named_params()`` (``'l0/W'``), to arrays or Variables
    of the parameters' shapes. For the call, each Parameter object is replaced, in every layer that
    holds it (shared parameters included), by the given Variable (so gradients flow to it: the inner
    step of meta-learning, to any order) or by a constant wrapping the given array; the model's own
    Parameters are put back afterwards, also on error, and their data and gradients are untouched.
    ``strict=False`` lets ``params`` name only some parameters (the others are the model's own);
    an unknown path is always an error. Buffers (BatchNorm's running statistics) and recurrent state
    are the model's own, as usual.

    Example::

        >>> import numpy as np
        >>> import dezero.functions as F
        >>> import dezero.layers as L
        >>> from dezero.func import functional_call, grad
        >>> model = L.Linear(1, in_size=2)
        >>> params = {'W': np.array([[1.0], [2.0]]), 'b': np.array([0.5])}
        >>> functional_call(model, params, np.array([[3.0, 4.0]]))
        variable([[11.5]])
        >>> loss = lambda p, x: F.sum(functional_call(model, p, x))
        >>> grad(loss)(params, np.array([[3.0, 4.0]]))
        {'W': array([[3.],
               [4.]]), 'b': array([1.])}
    """
    name = 'functional_call'
    if not isinstance(model, Layer):
        raise TypeError(f'{name}: model must be a Layer, got {type(model).__name__}')
    if not isinstance(params, Mapping):
        raise TypeError(f'{name}: params must be a dict of parameter path -> array or Variable, got '
                        f'{type(params).__name__}')
    own = dict(model.named_params())
    unknown = [path for path in params if path not in own]
    missing = [path for path in own if path not in params] if strict else []
    if unknown or missing:
        problems = ([f'unknown paths {unknown}'] if unknown else []) + (
            [f'missing paths {missing} (strict=False keeps the model\'s own)'] if missing else [])
        raise KeyError(f'{name}: params do not fit {type(model).__name__}: ' + ', '.join(problems)
                       + f'; its parameters are {list(own)}')
    replacements = {id(own[path]): _parameter_value(path, value, own[path]) for path, value in params.items()}
    slots = [(layer, attr, obj) for layer in _layers(model) for attr in layer._params
             if id(obj := layer.__dict__[attr]) in replacements]
    try:
        for layer, attr, obj in slots:
            # Straight into the instance dict: Layer.__setattr__ would unregister a non-Parameter.
            layer.__dict__[attr] = replacements[id(obj)]
        return model(*inputs, **kwargs)
    finally:
        for layer, attr, obj in slots:
            layer.__dict__[attr] = obj


def _parameter_value(path: str, value: Any, param: Variable) -> Variable:
    if isinstance(value, Variable):
        data = value.data
    elif isinstance(value, array_types):
        data = value
        value = Constant(value)
    else:
        raise TypeError(f"functional_call: params['{path}'] must be an array or a Variable, got "
                        f'{type(value).__name__}')
    if data is None:
        raise ValueError(f"functional_call: params['{path}'] holds no data (None)")
    if param.data is not None and data.shape != param.data.shape:
        raise ValueError(f"functional_call: params['{path}'] has shape {data.shape}, the parameter has "
                         f'shape {param.data.shape}')
    return value


def _layers(model: Layer) -> Iterator[Layer]:
    """``model`` and every sub-layer, each once."""
    seen, pending = set(), [model]
    while pending:
        layer = pending.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield layer
        pending.extend(obj for attr in layer._params if isinstance(obj := layer.__dict__[attr], Layer))
