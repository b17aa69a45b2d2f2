"""dezero.ops.shape (reshape, transpose, get_item, expand_dims, flatten, sum_to, broadcast_to) and
reduction's ``sum``: forward, gradients and double backward against PyTorch, third order on composites.
"""
import numpy as np
import pytest
import torch

import dezero.functions as F
from dezero import Variable
from tests.oracle import check_op, to_torch

rng = np.random.default_rng(0)


def check_third_order(ours, theirs, inputs, seed=0, rtol=1e-9, atol=1e-11):
    """Compare the first three directional derivatives of ``ours`` with torch's.

    Order k differentiates ``sum(g_{k-1} * v_k)`` where ``g_{k-1}`` are the previous gradients (``g_0``
    the output) and ``v_k`` random directions, so every backward of every op on the path is itself
    differentiated twice.
    """
    rng = np.random.default_rng(seed)
    xs = [Variable(a.copy()) for a in inputs]
    ts = [to_torch(a, requires_grad=True) for a in inputs]
    y, yt = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=rtol, atol=atol)
    v = rng.standard_normal(y.shape)
    out, out_t = (y * v).sum(), (yt * to_torch(v)).sum()
    for order in (1, 2, 3):
        for x in xs:
            x.cleargrad()
        out.backward(create_graph=order < 3)
        grads = [x.grad for x in xs]
        grads_t = torch.autograd.grad(out_t, ts, create_graph=order < 3)
        for i, (g, gt) in enumerate(zip(grads, grads_t)):
            assert g is not None, f'order {order}: no gradient for input {i}'
            np.testing.assert_allclose(g.data, gt.detach().numpy(), rtol=rtol, atol=atol,
                                       err_msg=f'order {order}, input {i}')
        vs = [rng.standard_normal(a.shape) for a in inputs]
        out = sum((g * v).sum() for g, v in zip(grads, vs))
        out_t = sum((g * to_torch(v)).sum() for g, v in zip(grads_t, vs))


def torch_sum_to(t: torch.Tensor, shape: tuple) -> torch.Tensor:
    lead = t.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1)
    return (t.sum(dim=dims, keepdim=True) if dims else t).reshape(shape)


def torch_sum(axis, keepdims):
    def f(t):
        if axis is None:
            return t.sum(dim=tuple(range(t.ndim)), keepdim=True) if keepdims else t.sum()
        return t.sum(dim=axis, keepdim=keepdims)
    return f


BOOL_MASK = rng.standard_normal((3, 4)) > 0
INT_INDEX = np.array([0, 2, 0, 0])
ROWS, COLS = np.array([0, 0, 1, 2]), np.array([3, 3, 0, 3])

# (id, ours, theirs, input shape)
CASES = [
    ('reshape', lambda x: F.reshape(x, (6, 4)), lambda t: t.reshape(6, 4), (2, 3, 4)),
    ('reshape_-1', lambda x: F.reshape(x, (4, -1, 2)), lambda t: t.reshape(4, -1, 2), (2, 3, 4)),
    ('reshape_flat', lambda x: x.reshape(-1), lambda t: t.reshape(-1), (2, 3)),
    ('transpose_none', F.transpose, lambda t: t.permute(2, 1, 0), (2, 3, 4)),
    ('transpose_axes', lambda x: F.transpose(x, (1, 0, 2)), lambda t: t.permute(1, 0, 2), (2, 3, 4)),
    ('transpose_cycle', lambda x: F.transpose(x, (2, 0, 1)), lambda t: t.permute(2, 0, 1), (2, 3, 4)),
    ('transpose_negative', lambda x: F.transpose(x, (-1, 0, -2)), lambda t: t.permute(2, 0, 1), (2, 3, 4)),
    ('T', lambda x: x.T, lambda t: t.T, (3, 5)),
    ('getitem_int', lambda x: x[1], lambda t: t[1], (3, 4)),
    ('getitem_slices', lambda x: x[1:, 0], lambda t: t[1:, 0], (3, 4)),
    ('getitem_step', lambda x: F.get_item(x, (slice(None, None, 2), slice(1, 3))), lambda t: t[::2, 1:3],
     (5, 4)),
    ('getitem_reverse', lambda x: x[::-1], lambda t: t.flip(0), (4, 2)),
    ('getitem_ellipsis_none', lambda x: x[..., None, 1], lambda t: t[..., None, 1], (2, 3, 4)),
    ('getitem_repeated_ints', lambda x: x[INT_INDEX], lambda t: t[torch.from_numpy(INT_INDEX)], (3, 4)),
    ('getitem_list', lambda x: x[[1, 1, 0]], lambda t: t[[1, 1, 0]], (3, 2)),
    ('getitem_int_2d', lambda x: x[np.array([[0, 1], [1, 1]])],
     lambda t: t[torch.tensor([[0, 1], [1, 1]])], (2, 3)),
    ('getitem_pairs', lambda x: x[ROWS, COLS], lambda t: t[torch.from_numpy(ROWS), torch.from_numpy(COLS)],
     (3, 4)),
    ('getitem_slice_and_ints', lambda x: x[1:, [0, 0, 3]], lambda t: t[1:, [0, 0, 3]], (3, 4)),
    ('getitem_bool_mask', lambda x: x[BOOL_MASK], lambda t: t[torch.from_numpy(BOOL_MASK)], (3, 4)),
    ('getitem_bool_rows', lambda x: x[np.array([True, False, True])],
     lambda t: t[torch.tensor([True, False, True])], (3, 4)),
    ('expand_dims_0', lambda x: F.expand_dims(x, 0), lambda t: t.unsqueeze(0), (2, 3)),
    ('expand_dims_1', lambda x: F.expand_dims(x, 1), lambda t: t.unsqueeze(1), (2, 3)),
    ('expand_dims_-1', lambda x: F.expand_dims(x, -1), lambda t: t.unsqueeze(-1), (2, 3)),
    ('flatten', F.flatten, lambda t: t.reshape(t.shape[0], -1), (2, 3, 4)),
    ('sum_all', F.sum, torch_sum(None, False), (2, 3)),
    ('sum_all_keepdims', lambda x: F.sum(x, keepdims=True), torch_sum(None, True), (2, 3)),
    ('sum_axis0', lambda x: F.sum(x, axis=0), torch_sum(0, False), (2, 3, 4)),
    ('sum_axis-1_keepdims', lambda x: F.sum(x, axis=-1, keepdims=True), torch_sum(-1, True), (2, 3, 4)),
    ('sum_tuple', lambda x: F.sum(x, axis=(0, 2)), torch_sum((0, 2), False), (2, 3, 4)),
    ('sum_tuple_keepdims', lambda x: x.sum(axis=(0, 2), keepdims=True), torch_sum((0, 2), True), (2, 3, 4)),
    ('sum_list', lambda x: F.sum(x, axis=[1, 2]), torch_sum((1, 2), False), (2, 3, 4)),
    ('sum_1d', F.sum, torch_sum(None, False), (5,)),
    ('sum_to_row', lambda x: F.sum_to(x, (1, 4)), lambda t: torch_sum_to(t, (1, 4)), (3, 4)),
    ('sum_to_col', lambda x: F.sum_to(x, (3, 1)), lambda t: torch_sum_to(t, (3, 1)), (2, 3, 4)),
    ('sum_to_lead', lambda x: F.sum_to(x, (4,)), lambda t: torch_sum_to(t, (4,)), (2, 3, 4)),
    ('sum_to_scalar', lambda x: F.sum_to(x, ()), lambda t: torch_sum_to(t, ()), (2, 3)),
    ('broadcast_to_rows', lambda x: F.broadcast_to(x, (2, 3)), lambda t: t.broadcast_to(2, 3), (3,)),
    ('broadcast_to_middle', lambda x: F.broadcast_to(x, (2, 3, 4)), lambda t: t.broadcast_to(2, 3, 4),
     (3, 1)),
    ('broadcast_to_scalar', lambda x: F.broadcast_to(x, (2, 2)), lambda t: t.broadcast_to(2, 2), ()),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize('name,ours,theirs,shape', CASES, ids=IDS)
def test_against_torch(name, ours, theirs, shape):
    check_op(ours, theirs, [rng.standard_normal(shape)])


@pytest.mark.parametrize('name,ours,theirs,shape', CASES, ids=IDS)
def test_composed_with_nonlinearity_against_torch(name, ours, theirs, shape):
    # Linear ops have a zero second derivative alone; after a cube their backward's backward runs.
    check_op(lambda x: ours(F.sin(x)) ** 3, lambda t: theirs(torch.sin(t)) ** 3, [rng.standard_normal(shape)])


@pytest.mark.parametrize('name', ['getitem_repeated_ints', 'getitem_bool_mask', 'transpose_negative',
                                  'sum_tuple', 'sum_to_col', 'broadcast_to_middle', 'getitem_pairs'])
def test_third_order(name):
    _, ours, theirs, shape = CASES[IDS.index(name)]
    check_third_order(lambda x: F.tanh(ours(x * x)), lambda t: torch.tanh(theirs(t * t)),
                      [rng.standard_normal(shape)])


def test_repeated_indices_accumulate():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    y = x[np.array([0, 0, 2, 0])]
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 1.0])


def test_index_held_in_a_variable():
    x = Variable(np.arange(6.0).reshape(3, 2))
    y = F.get_item(x, Variable(np.array([2, 2])))
    np.testing.assert_array_equal(y.data, [[4.0, 5.0], [4.0, 5.0]])
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 0], [0, 0], [2, 2]])


def test_identity_shapes_return_the_input():
    x = Variable(np.ones((2, 3)))
    assert F.reshape(x, (2, 3)) is x
    assert F.broadcast_to(x, (2, 3)) is x
    assert F.sum_to(x, (2, 3)) is x
    a = np.ones((2, 3))
    assert F.broadcast_to(a, (2, 3)).data is a  # an array is wrapped, not copied


@pytest.mark.parametrize('op', [
    lambda x: F.reshape(x, (4, 6)), lambda x: F.transpose(x, (2, 0, 1)), lambda x: x[1:, [0, 0]],
    lambda x: x[x.data > 0], lambda x: F.expand_dims(x, 1), F.flatten, lambda x: F.sum(x, axis=(0, 1)),
    lambda x: F.sum_to(x, (3, 1)), lambda x: F.broadcast_to(x, (5, 2, 3, 4)),
])
def test_float32_stays_float32(op):
    x = Variable(np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32))
    y = op(x)
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32 and x.grad.shape == x.shape


def test_errors_name_the_op_and_shapes():
    x = Variable(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r'reshape.*\(2, 3\).*\(4, 5\)'):
        F.reshape(x, (4, 5))
    with pytest.raises(ValueError, match=r'transpose.*\(0, 0\).*\(2, 3\)'):
        F.transpose(x, (0, 0))
    with pytest.raises(ValueError, match=r'broadcast_to.*\(2, 3\).*\(4, 3\)'):
        F.broadcast_to(x, (4, 3))
    with pytest.raises(IndexError, match=r'get_item.*\(2, 3\)'):
        x[5]


def test_sum_to_a_shape_that_does_not_broadcast_names_sum_to():
    with pytest.raises(ValueError, match=r'sum_to: shape \(2, 3\) cannot be summed to \(4,\)'):
        F.sum_to(Variable(np.ones((2, 3))), (4,))
    with pytest.raises(ValueError, match=r'sum_to'):
        F.sum_to(Variable(np.ones((2, 3))), (1, 2, 3))


@pytest.mark.parametrize('axis', [3, -4, 7])
def test_expand_dims_axis_out_of_range_raises(axis):
    with pytest.raises(ValueError, match=rf'expand_dims: axis {axis} is out of range for an input of shape'):
        F.expand_dims(Variable(np.ones((2, 3))), axis)


@pytest.mark.parametrize('axis,shape', [(2, (2, 3, 1)), (-3, (1, 2, 3)), (-1, (2, 3, 1))])
def test_expand_dims_accepts_every_valid_axis(axis, shape):
    assert F.expand_dims(Variable(np.ones((2, 3))), axis).shape == shape
