"""Plotting shared by the example scripts: pyplot without a display, atomic PNG writes, training curves.

The scripts import it as a sibling (``from _plotting import ...``): run as ``python examples/x.py``,
Python puts ``examples/`` first on ``sys.path``. matplotlib is imported only when a plot is drawn, so
the scripts' other functions work without it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dezero.utils import atomic_file

CURVE_KEYS = ('train_loss', 'test_loss', 'train_acc', 'test_acc')


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, which renders to files and needs no display.

    Raises ImportError naming the optional ``plot`` extra when matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError("the example plots need matplotlib, the optional 'plot' extra: "
                          "pip install 'dezero[plot]'") from error
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str, dpi: int = 100) -> None:
    """Write matplotlib figure ``fig`` as a PNG to ``path`` atomically, then close it.

    Readers of ``path`` see the old file or the complete new one; on error the old file stays as it was.
    The figure is closed in any case, so long runs that plot often do not accumulate open figures.
    """
    try:
        with atomic_file(path, suffix='.png') as tmp_path:
            fig.savefig(tmp_path, format='png', dpi=dpi)
    finally:
        pyplot().close(fig)


def plot_training_curves(history: Mapping[str, Sequence[float]], path: str, title: str,
                         loss_label: str = 'loss') -> None:
    """Plot train and test loss (left) and accuracy (right) per epoch and save the PNG to ``path``.

    ``history`` maps each of ``train_loss``, ``test_loss``, ``train_acc`` and ``test_acc`` to one value
    per epoch (epochs numbered from 1; other keys are ignored). ``loss_label`` names the loss axis.
    """
    missing = [key for key in CURVE_KEYS if key not in history]
    if missing:
        raise ValueError(f'plot_training_curves: history lacks {missing}; it has {sorted(history)}, '
                       f'needs {list(CURVE_KEYS)}')
    lengths = {key: len(history[key]) for key in CURVE_KEYS}
    if len(set(lengths.values())) != 1 or not lengths['train_loss']:
        raise ValueError(f'plot_training_curves: expected one value per epoch (at least one) under each '
                         f'key, got lengths {lengths}')
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = range(1, lengths['train_loss'] + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for split, marker in (('train', 'o-'), ('test', 's-')):
        ax_loss.plot(epochs, history[f'{split}_loss'], marker, label=split)
        ax_acc.plot(epochs, history[f'{split}_acc'], marker, label=split)
    ax_loss.set(xlabel='epoch', ylabel=loss_label, title='loss')
    ax_acc.set(xlabel='epoch', ylabel='accuracy', title='accuracy')
    for ax in (ax_loss, ax_acc):
        # Epochs are whole numbers; min_n_ticks=1 keeps that true for a single epoch too.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
