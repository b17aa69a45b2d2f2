"""The cache directory and ``get_file``: fetch a URL into it once, atomically, and reuse it after.

Everything DeZero downloads (datasets, pretrained weights, label lists) lives in one directory,
``~/.dezero`` by default. The environment variable ``DEZERO_CACHE_DIR`` overrides it, read at every
call, so a test or a shared machine can point DeZero elsewhere without touching code.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from dezero._files import atomic_file

# The book's location; ``get_cache_dir()`` is what library code asks, so the variable can override it.
cache_dir = os.path.join(os.path.expanduser('~'), '.dezero')

_CHUNK_BYTES = 1 << 16
_TIMEOUT_S = 60


class DownloadError(OSError):
    """A file could not be fetched (network failure, HTTP error, short read or checksum mismatch).

    ``reason`` is the short cause ('HTTP 404 Not Found', 'checksum mismatch', ...), for callers that
    write their own message.
    """

    def __init__(self, message: str, reason: str = '') -> None:
        super().__init__(message)
        self.reason = reason or message


def get_cache_dir() -> str:
    """Return the cache directory: ``$DEZERO_CACHE_DIR`` when set, else ``cache_dir`` (``~/.dezero``)."""
    return os.environ.get('DEZERO_CACHE_DIR') or cache_dir


def _cache_path(url: str, file_name: str | None) -> str:
    if file_name is None:
        file_name = os.path.basename(urllib.parse.urlparse(url).path)
        if not file_name:
            raise ValueError(f'get_file: cannot take a file name from the URL {url!r}; pass file_name')
    parts = file_name.replace('\\', '/').split('/')
    # A relative path is allowed (datasets keep sub-folders), but it must stay inside the cache.
    if os.path.isabs(file_name) or any(p in ('', '.', '..') for p in parts):
        raise ValueError(f'get_file: file_name must be a relative path inside the cache directory '
                         f'without "." or ".." parts, got {file_name!r}')
    return os.path.join(get_cache_dir(), *parts)


class _Progress:
    """A tqdm bar when tqdm imports, else a percentage line rewritten in place on stderr."""

    def __init__(self, name: str, total: int | None) -> None:
        self.name, self.total, self.done = name, total, 0
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=total, unit='B', unit_scale=True, unit_divisor=1024, desc=name)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        megabytes = self.done / 2 ** 20
        if self.total:
            line = f'{100 * self.done / self.total:5.1f}% of {self.total / 2 ** 20:.1f} MiB'
        else:
            line = f'{megabytes:.1f} MiB'
        sys.stderr.write(f'\rDownloading {self.name}: {line}')
        sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write('\n')
            sys.stderr.flush()


def get_file(url: str, file_name: str | None = None, sha256: str | None = None) -> str:
    """Return the local path of ``url`` in the cache directory, downloading it the first time.

    The file is ``<cache dir>/<file_name>`` (default: the last part of the URL's path; a relative
    sub-path such as ``'fashion-mnist/x.gz'`` is allowed). An existing file is reused as it is, with no
    network access. Otherwise the body is streamed into a temporary file beside it with a progress bar,
    checked against ``sha256`` (hex digest) when given, and moved into place with ``os.replace``; any
    failure leaves no partial file behind. Raises ``DownloadError`` naming the URL, the file expected and
    where to put it by hand when the download fails, or the file when the checksum differs.

    Example: ``path = get_file('https://example.org/data.npz')`` → ``'/home/me/.dezero/data.npz'``.
    """
    path = _cache_path(url, file_name)
    if os.path.exists(path):
        return path
    scheme = urllib.parse.urlparse(url).scheme
    if scheme and scheme not in ('http', 'https', 'ftp', 'file'):
        raise ValueError(f'get_file: invalid URL {url!r}: unsupported scheme {scheme!r}; expected an '
                         'http or https URL')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    name = os.path.basename(path)
    try:
        request = urllib.request.Request(url, headers={'User-Agent': 'dezero'})
    except ValueError as e:
        raise ValueError(f'get_file: invalid URL {url!r}: {e}') from None

    with atomic_file(path, suffix='.part') as tmp_path, open(tmp_path, 'wb') as out:
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                length = response.headers.get('Content-Length')
                total = int(length) if length and length.isdigit() else None
                progress = _Progress(name, total)
                try:
                    while chunk := response.read(_CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
                        progress.update(len(chunk))
                finally:
                    progress.close()
            if total is not None and progress.done != total:
                raise http.client.IncompleteRead(b'', total - progress.done)
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, urllib.error.HTTPError):
                reason = f'HTTP {e.code} {e.reason}'
            elif isinstance(e, http.client.IncompleteRead):
                reason = f'the connection closed {e.expected} bytes before the end'
            else:
                reason = str(getattr(e, 'reason', None) or e)
            raise DownloadError(
                f'get_file: could not download {url} ({reason}). Download it by other means and save '
                f'it as {path} (the file {name!r} in the directory {os.path.dirname(path)})',
                reason) from e
        out.close()
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise DownloadError(
                f'get_file: the SHA-256 of the file {name!r} downloaded from {url} is '
                f'{digest.hexdigest()}, expected {sha256.lower()}; it was discarded',
                f'SHA-256 mismatch for {name}')
    return path
