"""A recurrent network learns a noisy sine wave one step ahead, then predicts a cosine it never saw.

``--cell rnn``: a plain RNN (hidden 100, tanh) plus a Linear output, fed one time step at a time
(batch 1) with truncated backpropagation through time every 30 steps and Adam.
``--cell lstm``: the same with an LSTM layer, fed 30 parallel slices of the sequence at once by
``SeqDataLoader`` (batch 30), which trains faster and better.

Training data is ``SinCurve`` (sin plus ±0.05 noise, target = the next value). Afterwards the state is
reset and, without recording a graph, the model predicts the next value along two periods of cos(x);
prediction and truth are plotted together.

Run: ``python examples/rnn_sin_curve.py [--cell rnn|lstm] [--epochs 100]`` (about 20 seconds for the
RNN and 1.5 for the LSTM on two CPU cores).
Writes ``out/rnn_sin_curve.png`` or ``out/lstm_sin_curve.png``.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
from _common import example_parser, int_at_least, progress, write
from _plotting import pyplot, save_figure

import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import Model, SeqDataLoader, optimizers


class SequenceRegressor(Model):
    """One recurrent layer (``cell``: ``'rnn'`` or ``'lstm'``) and a Linear head: (N, in) → (N, out).

    The recurrent layer keeps its hidden state between calls; ``reset_state`` starts a new sequence.
    """

    def __init__(self, cell: str, hidden_size: int, out_size: int = 1) -> None:
        super().__init__()
        if cell not in ('rnn', 'lstm'):
            raise ValueError(f"SequenceRegressor: cell must be 'rnn' or 'lstm', got {cell!r}")
        self.recurrent = L.RNN(hidden_size) if cell == 'rnn' else L.LSTM(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self) -> None:
        self.recurrent.reset_state()

    def forward(self, x: dezero.Variable) -> dezero.Variable:
        return self.fc(self.recurrent(x))


def train(model: SequenceRegressor, loader: SeqDataLoader, epochs: int, bptt_length: int,
          max_iters: int = 0) -> list[float]:
    """Truncated BPTT with Adam; returns the mean squared error per epoch.

    ``max_iters`` > 0 stops each epoch after that many steps (for quick runs).
    """
    optimizer = optimizers.Adam().setup(model)
    steps = loader.max_iter if max_iters <= 0 else min(max_iters, loader.max_iter)
    losses = []
    start = time.perf_counter()
    for epoch in progress(range(1, epochs + 1), 'training'):
        model.reset_state()
        loss, total, count = 0, 0.0, 0
        for x, t in loader:
            if count == steps:
                break  # the next ``for`` starts a fresh epoch
            step_loss = F.mean_squared_error(model(x), t)
            loss = loss + step_loss
            total += float(step_loss.data)
            count += 1
            if count % bptt_length == 0 or count == steps:
                model.cleargrads()
                loss.backward()
                # Keep the hidden state's value but forget how it was computed: the next window's
                # backward stops here instead of running through the whole sequence again.
                loss.unchain_backward()
                optimizer.update()
                loss = 0
        losses.append(total / count)
        if epoch == 1 or epoch % 10 == 0 or epoch == epochs:
            write(f'epoch {epoch}: loss {losses[-1]:.6f} ({time.perf_counter() - start:.1f} s)')
    return losses


def predict_cosine(model: SequenceRegressor, n_points: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Feed cos over two periods one step at a time; return (inputs, one-step-ahead predictions)."""
    xs = np.cos(np.linspace(0, 4 * np.pi, n_points)).astype(np.float32)
    model.reset_state()
    predictions = []
    with dezero.no_grad(), dezero.test_mode():
        for value in xs:
            y = model(value.reshape(1, 1))
            predictions.append(float(y.data[0, 0]))
    return xs, np.array(predictions, dtype=np.float32)


def plot_prediction(xs: np.ndarray, predictions: np.ndarray, cell: str, path: str) -> None:
    """Prediction vs the true next value, written atomically to ``path``."""
    plt = pyplot()

    steps = np.arange(len(xs))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps[:-1], xs[1:], label='cos (truth, next value)')
    ax.plot(steps[:-1], predictions[:-1], '--', label=f'{cell.upper()} prediction')
    ax.set(xlabel='step', ylabel='y', title=f'{cell.upper()} trained on sin, predicting cos')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = example_parser(__doc__)
    parser.add_argument('--cell', choices=('rnn', 'lstm'), default='rnn',
                        help='the recurrent layer: a plain tanh RNN or an LSTM')
    parser.add_argument('--epochs', type=int_at_least(1), default=100, help='passes over the sine curve')
    parser.add_argument('--hidden-size', type=int_at_least(1), default=100,
                        help="size of the recurrent layer's hidden state")
    parser.add_argument('--bptt-length', type=int_at_least(1), default=30,
                        help='time steps between two backward passes (truncated BPTT)')
    parser.add_argument('--batch-size', type=int_at_least(0), default=0,
                        help='parallel slices of the sequence (0: 1 for rnn, 30 for lstm)')
    parser.add_argument('--max-iters', type=int_at_least(0), default=0,
                        help='cap steps per epoch (0: whole epoch)')
    parser.add_argument('--seed', type=int, default=0, help='seed of np.random: weights and noise')
    parser.add_argument('--out-dir', default='out', help='directory for the plot')
    args = parser.parse_args(argv)
    batch_size = args.batch_size or (1 if args.cell == 'rnn' else 30)

    np.random.seed(args.seed)
    train_set = dezero.datasets.SinCurve(train=True)
    loader = SeqDataLoader(train_set, batch_size=batch_size)
    model = SequenceRegressor(args.cell, args.hidden_size)
    print(f'{args.cell.upper()}({args.hidden_size}) + Linear(1) on SinCurve ({len(train_set)} steps), '
          f'batch {batch_size}, BPTT length {args.bptt_length}, Adam, {args.epochs} epochs')
    losses = train(model, loader, args.epochs, args.bptt_length, args.max_iters)

    xs, predictions = predict_cosine(model)
    test_mse = float(np.mean((predictions[:-1] - xs[1:]) ** 2))
    print(f'one-step-ahead MSE on cos: {test_mse:.6f}')
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, f'{args.cell}_sin_curve.png')
    plot_prediction(xs, predictions, args.cell, path)
    print(f'prediction plotted to {path}')
    return {'losses': losses, 'test_mse': test_mse}


if __name__ == '__main__':
    main()
