"""Plain-text tables for the reports (``Model.summary``, ``Profile.table``)."""
from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """Columns padded to their widest cell, a rule under the header; ``align`` has one character per
    column, ``'<'`` (left) or ``'>'`` (right)."""
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return '  '.join(f'{cell:{a}{w}}' for cell, a, w in zip(cells, align, widths)).rstrip()

    rule = '-' * (sum(widths) + 2 * (len(widths) - 1))
    return '\n'.join([line(headers), rule] + [line(row) for row in rows])
