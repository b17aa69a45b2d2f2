"""Keeping the replicas of a model identical: comparing their structure across ranks and
broadcasting rank 0's parameters (and buffers) to every rank.

Data parallelism is only correct when every rank holds the same model: the same parameters, in the
same order, with the same shapes, dtypes and values. The structure check runs on every rank and, when
the replicas differ, raises the same ``ValueError`` on all of them, naming the first parameter that
differs (so no rank is left waiting in a collective, and nothing averages mismatched buffers).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from dezero.core import Parameter
from dezero.cuda import get_array_module
from dezero.distributed._buckets import DEFAULT_BUCKET_BYTES, pack, plan_buckets, unpack_into

# (path, shape, dtype name) of one parameter or buffer; shape and dtype are None while it is not created.
Meta = tuple[str, 'tuple[int, ...] | None', 'str | None']

__all__ = ['broadcast_parameters']


def named_params(target: Any) -> list[tuple[str, Parameter]]:
    """``(path, Parameter)`` of a Layer (``'l0/W'``), or of an optimizer's plain list (``'param 3'``)."""
    if hasattr(target, 'named_params'):
        return list(target.named_params())
    return [(f'param {i}', param) for i, param in enumerate(target.params())]


def named_buffers(target: Any) -> Iterator[tuple[str, Any, str]]:
    """``(path, owning layer, attribute name)`` of every array buffer (BatchNorm's running statistics)."""
    entries = getattr(target, '_all_entries', None)
    if entries is None:
        return
    for path, owner, name, is_param in entries():
        if not is_param:
            yield path, owner, name


def _meta(path: str, data: Any) -> Meta:
    return (path, None, None) if data is None else (path, tuple(data.shape), data.dtype.name)


def _describe(shape: tuple[int, ...] | None, dtype: str | None) -> str:
    return 'not created yet (None)' if shape is None else f'{shape} {dtype}'


def first_difference(local: list[Meta], reference: list[Meta], rank: int, root: int,
                     fill_missing: bool) -> str | None:
    """Describe the first entry where this rank's ``local`` structure differs from the root's
    ``reference``, or return None when they agree. With ``fill_missing``, an entry not yet created
    here (None) but created on the root is no difference: the root's value will fill it."""
    for (path, shape, dtype), (ref_path, ref_shape, ref_dtype) in zip(local, reference):
        if path != ref_path:
            return f"rank {rank} has '{path}' where rank {root} has '{ref_path}'"
        if (shape, dtype) == (ref_shape, ref_dtype) or (fill_missing and shape is None):
            continue
        return (f"'{path}' is {_describe(shape, dtype)} on rank {rank} but "
                f"{_describe(ref_shape, ref_dtype)} on rank {root}")
    common = min(len(local), len(reference))
    if len(local) > common:
        return f"'{local[common][0]}' exists on rank {rank} but not on rank {root}"
    if len(reference) > common:
        return f"'{reference[common][0]}' exists on rank {root} but not on rank {rank}"
    return None


def check_same_structure(comm: Any, local: list[Meta], where: str, root: int = 0,
                         fill_missing: bool = False) -> list[Meta]:
    """Raise the same ``ValueError`` on every rank when any rank's structure differs from the root's;
    return the root's structure.

    Collective: every rank must call it. The root's list is broadcast, each rank compares its own
    (see ``first_difference``), and the verdicts are gathered so that all ranks agree.
    """
    reference = comm.mpi_comm.bcast(local if comm.rank == root else None, root=root)
    problem = first_difference(local, reference, comm.rank, root, fill_missing)
    problems = [p for p in comm.mpi_comm.allgather(problem) if p is not None]
    if problems:
        raise ValueError(f'{where}: the replicas differ: {problems[0]}. Every rank must build the same '
                         'model (same layers, sizes and dtypes) and feed it inputs of the same shape')
    return reference


def broadcast_arrays(comm: Any, arrays: list[Any], root: int = 0,
                     bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
    """Overwrite ``arrays`` on every rank with the root's, in place, a bucket per ``Bcast`` call.

    Every rank passes arrays of the same shapes and dtypes in the same order (NumPy or CuPy; CuPy
    arrays travel through host buffers).
    """
    for bucket in plan_buckets([(a.shape, a.dtype) for a in arrays], bucket_bytes):
        buffer = bucket.empty()
        if comm.rank == root:
            pack(bucket, arrays, buffer)
        comm.mpi_comm.Bcast(buffer, root=root)
        if comm.rank != root:
            unpack_into(bucket, buffer, arrays)


def broadcast_parameters(target: Any, comm: Any, root: int = 0, buffers: bool = True,
                         bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
    """Give every rank the root's parameters (and, with ``buffers``, its array buffers such as
    BatchNorm's running statistics): afterwards all replicas of ``target`` are identical.

    Collective: every rank calls it with its own replica of ``target`` (a Layer, or anything with
    ``params()``). Parameters still None on the root (lazy layers not yet called) are left alone;
    those None on another rank only are created there from the root's. When the structure differs
    (another parameter name, shape or dtype; a parameter created on some rank but not on the root),
    every rank raises the same ``ValueError`` naming the first parameter that differs, before any data
    moves. Arrays are written in place, keep their device, and move in few large ``Bcast`` calls.

    Example (under ``mpiexec -n 2``)::

        comm = dezero.distributed.create_communicator()
        model = dezero.models.MLP((10, 3))
        model(np.zeros((1, 4), np.float32))           # create the lazy parameters
        dezero.distributed.broadcast_parameters(model, comm)   # now every rank has rank 0's weights
    """
    synchronise_parameters(target, comm, 'dezero.distributed.broadcast_parameters', root, buffers,
                           bucket_bytes)


def synchronise_parameters(target: Any, comm: Any, where: str, root: int = 0, buffers: bool = True,
                           bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
    """``broadcast_parameters``, with errors naming ``where`` (the public function or its caller)."""
    entries: list[tuple[str, Any, Any]] = []  # (path, read(), write(array))
    for path, param in named_params(target):
        entries.append((path, param, None))
    if buffers:
        for path, owner, name in named_buffers(target):
            entries.append((path, owner, name))

    def read(entry: tuple[str, Any, Any]) -> Any:
        _, obj, name = entry
        return obj.data if name is None else obj.__dict__[name]

    local = [_meta(entry[0], read(entry)) for entry in entries]
    reference = check_same_structure(comm, local, where, root=root, fill_missing=True)
    xp = _array_module(target)
    arrays = []
    for entry, (_, shape, dtype) in zip(entries, reference):
        if shape is None:
            continue
        data = read(entry)
        if data is None:  # lazy here, created on the root: make room for the root's values
            data = xp.empty(shape, dtype=dtype)
            _, obj, name = entry
            if name is None:
                obj.data = data
            else:
                setattr(obj, name, data)
        arrays.append(data)
    broadcast_arrays(comm, arrays, root=root, bucket_bytes=bucket_bytes)


def _array_module(target: Any) -> Any:
    """The array module of ``target``'s first existing parameter (NumPy when none exists)."""
    for param in target.params():
        if param.data is not None:
            return get_array_module(param.data)
    return np
