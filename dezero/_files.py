"""Writing files whole or not at all (the one place that does "temporary file, then rename"), and
reading ``.npz`` archives back with errors that name the file.

A temporary file is named ``.{target}.{host}.{pid}.{random}{suffix}`` beside its target: ``host`` is a
short hash of the machine's name and ``pid`` the writer's process id. A writer killed outright
(SIGKILL, power loss) cannot remove its temporary, so every atomic write first removes the
temporaries of earlier writers of the same target that ran on this machine and are no longer alive.
Temporaries of other machines (a shared filesystem) are left alone, since their writers cannot be
probed from here. A dead writer's pid reused by a new, live process keeps that one temporary until
the new process ends: harmless, it is only disk space.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator

import numpy as np


@functools.cache
def host_tag() -> str:
    """8 hex digits naming this machine in temporary file names (a CRC of its host name)."""
    import socket  # here, not at import time: only writers need it
    return f'{zlib.crc32(socket.gethostname().encode()):08x}'


def new_file_mode(path: str) -> int:
    """Permission bits for a file replacing ``path``: the old file's, else what ``open`` would give."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine exists (a zombie counts as alive until reaped)."""
    if pid == os.getpid() or os.name == 'nt':  # on Windows os.kill would terminate the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def remove_stale_temporaries(path: str, suffix: str = '.tmp') -> list[str]:
    """Remove the temporaries that dead writers on this machine left beside ``path``.

    Only names of the form ``atomic_file`` gives (``.{base}.{host}.{pid}.{random}{suffix}``) with this
    machine's host tag and the pid of a process that no longer exists are removed. Returns the
    paths removed. Best effort: a file another cleaner removed first, or one this user may not
    delete, is skipped.
    """
    directory, base = os.path.split(os.path.abspath(path))
    prefix = f'.{base}.{host_tag()}.'
    pattern = re.compile(r'(\d+)\.[a-z0-9_]+' + re.escape(suffix))
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name, len(prefix)) if name.startswith(prefix) else None
        if match is None or _process_alive(int(match.group(1))):
            continue
        try:
            os.remove(os.path.join(directory, name))
        except OSError:
            continue
        removed.append(os.path.join(directory, name))
    return removed


@contextlib.contextmanager
def atomic_file(path: str, suffix: str = '.tmp') -> Iterator[str]:
    """Yield a temporary path beside ``path`` to write to; it replaces ``path`` when the block succeeds.

    The rename is atomic, so readers see the old file or the complete new one, never a partial write.
    The new file gets ordinary permissions (the old file's, else the umask's, not ``mkstemp``'s 0600).
    When the block raises, the temporary file is removed and ``path`` is left as it was; temporaries
    left by writers of ``path`` that were killed are removed first (``remove_stale_temporaries``).
    """
    directory, base = os.path.split(os.path.abspath(path))
    remove_stale_temporaries(path, suffix)
    fd, tmp_path = tempfile.mkstemp(prefix=f'.{base}.{host_tag()}.{os.getpid()}.', suffix=suffix,
                                    dir=directory)
    os.close(fd)
    try:
        yield tmp_path
        os.chmod(tmp_path, new_file_mode(path))
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def read_npz(path: str, where: str, what: str = 'archive') -> dict[str, np.ndarray]:
    """Read every array of the ``.npz`` file ``path``; any damage is reported naming the file.

    ``where`` names the caller in the message (``'MLP.load_weights'``), ``what`` the kind of archive
    (``'weights archive'``). A foreign file is rejected before ``np.load`` could fall back to pickle.
    Raises ``ValueError`` for anything but a complete, pickle-free ``.npz`` archive.
    """
    with open(path, 'rb') as file:
        magic = file.read(6)
    if magic.startswith(b'\x93NUMPY'):
        raise ValueError(f"{where}: '{path}' holds a single .npy array, not an .npz {what}")
    if not magic.startswith((b'PK\x03\x04', b'PK\x05\x06')):
        raise ValueError(f"{where}: '{path}' is not an .npz {what} (no zip signature; "
                         f'starts with {magic!r})')
    try:
        with zipfile.ZipFile(path) as archive:
            return {_npz_key(info.filename): _read_npz_member(archive, info, os.path.getsize(path), what)
                    for info in archive.infolist()}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"{where}: '{path}' is a truncated or damaged .npz {what}: {error}") from error


def _npz_key(member_name: str) -> str:
    return member_name[:-4] if member_name.endswith('.npy') else member_name


# Deflate compresses by at most this factor, so a deflated entry of n bytes unpacks to at most 1032 n.
_DEFLATE_MAX_RATIO = 1032
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}


def _read_npz_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, archive_size: int,
                     what: str) -> np.ndarray:
    """Read one ``.npy`` entry, after checking that the sizes its headers claim are ones the archive
    can hold: a damaged header claiming terabytes is refused before anything is allocated."""
    key = _npz_key(info.filename)
    stored = info.compress_type == zipfile.ZIP_STORED
    if info.compress_size > archive_size or info.file_size > info.compress_size * (
            1 if stored else _DEFLATE_MAX_RATIO):
        raise ValueError(f'entry {key!r} claims {info.file_size} bytes, more than the archive holds')
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = _NPY_HEADER_READERS.get(version)
        if read_header is None:
            raise ValueError(f'entry {key!r} is a .npy file of unsupported format version {version}')
        shape, fortran_order, dtype = read_header(member)
        if dtype.hasobject:
            raise ValueError(f'entry {key!r} holds Python objects (dtype {dtype}), which would need '
                             f'pickle; a {what} holds numeric arrays only')
        claimed = math.prod(shape) * dtype.itemsize
        held = info.file_size - member.tell()
        if claimed != held:
            raise ValueError(f'entry {key!r} claims shape {shape} of {dtype} ({claimed} bytes) but holds '
                             f'{held} bytes')
        member.seek(0)
        return np.lib.format.read_array(member, allow_pickle=False)
