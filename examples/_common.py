"""What the example scripts share besides plotting: their command line, progress bars, quick-run subsets.

The scripts import it as a sibling (``from _common import ...``), like ``_plotting``. tqdm is the
optional ``progress`` extra: without it the bars are left out and the scripts print the same summary
lines.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar('T')


def example_parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first line of the script's docstring ``doc``.

    Its ``--help`` shows each option's default after the option's help text, so every option should
    get a ``help=`` string.
    """
    return argparse.ArgumentParser(description=doc.strip().splitlines()[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse ``type`` accepting whole numbers >= ``minimum``: 1 for counts, 0 where 0 means "all"."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected a whole number >= {minimum}, got {text!r}') from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f'expected a whole number >= {minimum}, got {value}')
        return value

    return parse


def add_subset_options(parser: argparse.ArgumentParser, test: bool = True) -> None:
    """Add ``--train-size`` (and, with ``test``, ``--test-size``): use only the first N samples of the
    set, 0 for all of it. The scripts apply them with ``keep_first``."""
    parser.add_argument('--train-size', type=int_at_least(0), default=0,
                        help='train on the first N training samples (0: all)')
    if test:
        parser.add_argument('--test-size', type=int_at_least(0), default=0,
                            help='evaluate on the first N test samples (0: all)')


def add_checkpoint_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--checkpoint PATH`` (save the run there after every epoch) and ``--resume PATH``
    (continue a saved run), for ``dezero.save_checkpoint``/``load_checkpoint``."""
    parser.add_argument('--checkpoint', metavar='PATH', help='save a checkpoint there after every epoch')
    parser.add_argument('--resume', metavar='PATH', help='continue the run saved in this checkpoint')


def keep_first(dataset: Any, size: int) -> Any:
    """Cut an array dataset (``data`` and ``label`` arrays) to its first ``size`` samples, in place.

    ``size`` 0 keeps them all. Returns ``dataset``, for chaining.
    """
    if size:
        dataset.data = dataset.data[:size]
        if dataset.label is not None:
            dataset.label = dataset.label[:size]
    return dataset


def progress(iterable: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
    """``iterable`` wrapped in a tqdm bar on stderr that disappears when done; ``iterable`` without tqdm.

    ``total`` (the number of items, for the percentage and the time left) defaults to
    ``len(iterable)`` where it has one: a DataLoader's batches per epoch.
    """
    try:
        from tqdm import tqdm
    except ImportError:  # the optional 'progress' extra: plain iteration without it
        return iterable
    return tqdm(iterable, total=total, desc=description, leave=False, ncols=80, mininterval=0.5)


def write(message: str) -> None:
    """Print ``message`` on stdout as a line of its own, without tearing a progress bar on screen."""
    try:
        from tqdm import tqdm
    except ImportError:
        print(message, flush=True)
        return
    tqdm.write(message, file=sys.stdout)
    sys.stdout.flush()
