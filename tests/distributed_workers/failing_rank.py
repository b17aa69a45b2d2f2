"""Run under ``mpiexec -n 2`` by tests/test_distributed.py: rank ``argv[1]`` raises in the middle of
training while the other rank goes on into its next gradient ``Allreduce``. The job must end at once,
non-zero, with the error's text in the output, instead of the other rank waiting forever."""
from __future__ import annotations

import sys

import numpy as np

import dezero.functions as F
from dezero import optimizers
from dezero.distributed import DistributedOptimizer, create_communicator
from dezero.models import MLP

comm = create_communicator()
failing_rank = int(sys.argv[1])
np.random.seed(0)
model = MLP((8, 2))
optimizer = DistributedOptimizer(optimizers.SGD(), comm).setup(model)
x, t = np.ones((4, 3), np.float32), np.zeros(4, np.int32)
for step in range(100):
    if step == 3 and comm.rank == failing_rank:
        raise RuntimeError(f'rank {comm.rank} fails on purpose at step {step}')
    loss = F.softmax_cross_entropy(model(x), t)
    model.cleargrads()
    loss.backward()
    optimizer.update()
comm.print('unreachable: the job should have ended')
