"""The book's step60 workload: LSTM(100) + Linear(1) learning the noisy sine curve with truncated BPTT.

SinCurve train set (999 points), ``SeqDataLoader(batch_size=30)``, bptt_length 30, Adam, as the book
writes it::

    y = model(x); loss += F.mean_squared_error(y, t); count += 1
    if count % 30 == 0 or count == seqlen:
        model.cleargrads(); loss.backward(); loss.unchain_backward(); optimizer.update()

One timed step is one BPTT window: the book's first window of an epoch (reset the state, 30 time steps
of batch 30, backward, update). The PyTorch side is ``nn.LSTMCell(1, 100)`` + ``nn.Linear(100, 1)`` in
the same loop (``loss.backward()``, the state detached after each window) on the same data, with
``TORCH_THREADS`` threads: at these sizes one thread measured faster than its default (every core).
Each library runs in its own fresh process (see ``_harness``).
Run: ``python benchmarks/lstm.py [--rounds 5] [--profile] [--in-process]``.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Workload, main  # noqa: E402

HIDDEN = 100
BATCH = 30
BPTT = 30
TORCH_THREADS = 1


def dezero_step():
    import itertools

    import numpy as np

    import dezero.functions as F
    import dezero.layers as L
    from dezero import Model, SeqDataLoader, optimizers
    from dezero.datasets import SinCurve

    class SinLSTM(Model):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = L.LSTM(HIDDEN)
            self.fc = L.Linear(1)

        def reset_state(self) -> None:
            self.rnn.reset_state()

        def forward(self, x):
            return self.fc(self.rnn(x))

    np.random.seed(0)
    train_set = SinCurve(train=True)
    loader = SeqDataLoader(train_set, batch_size=BATCH)
    model = SinLSTM()
    optimizer = optimizers.Adam().setup(model)
    seqlen = len(train_set)

    def window() -> None:
        model.reset_state()
        loss, count = 0, 0
        for x, t in itertools.islice(loader, BPTT):
            y = model(x)
            loss += F.mean_squared_error(y, t)
            count += 1
            if count % BPTT == 0 or count == seqlen:
                model.cleargrads()
                loss.backward()
                loss.unchain_backward()
                optimizer.update()

    return window


def pytorch_step():
    import numpy as np
    import torch

    torch.set_num_threads(TORCH_THREADS)
    np.random.seed(0)
    points = np.linspace(0, 2 * np.pi, 1000)
    curve = (np.sin(points) + np.random.uniform(-0.05, 0.05, size=points.shape)).astype(np.float32)
    data, label = torch.from_numpy(curve[:-1, None]), torch.from_numpy(curve[1:, None])
    jump = len(data) // BATCH
    rows = np.arange(BATCH) * jump
    cell, fc = torch.nn.LSTMCell(1, HIDDEN), torch.nn.Linear(HIDDEN, 1)
    optimizer = torch.optim.Adam([*cell.parameters(), *fc.parameters()])

    def window() -> None:
        state = None
        loss = 0
        for i in range(BPTT):
            index = torch.from_numpy(rows + i)
            state = cell(data[index], state)
            loss = loss + torch.nn.functional.mse_loss(fc(state[0]), label[index])
        optimizer.zero_grad()
        loss.backward()
        state = tuple(s.detach() for s in state)
        optimizer.step()

    return window


WORKLOAD = Workload('lstm', f'book step60: LSTM({HIDDEN}) + Linear(1), batch {BATCH}, BPTT {BPTT}, Adam, '
                    'one window', 'ms/window', 1e3, steps=30, warmup=3,
                    build={'dezero': dezero_step, 'pytorch': pytorch_step})

if __name__ == '__main__':
    main(WORKLOAD, __file__)
