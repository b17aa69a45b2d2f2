"""Writing files whole or not at all: the one place that does "temporary file, then rename"."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


def new_file_mode(path: str) -> int:
    """Permission bits for a file replacing ``path``: the old file's, else what ``open`` would give."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_file(path: str, suffix: str = '.tmp') -> Iterator[str]:
    """Yield a temporary path beside ``path`` to write to; it replaces ``path`` when the block succeeds.

    The rename is atomic, so readers see the old file or the complete new one, never a partial write.
    The new file gets ordinary permissions (the old file's, else the umask's, not ``mkstemp``'s 0600).
    When the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    directory, base = os.path.split(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=f'.{base}.', suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp_path
        os.chmod(tmp_path, new_file_mode(path))
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
