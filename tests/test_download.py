"""dezero.download: get_file against a local HTTP server (no real network), cache directory rules."""
import functools
import hashlib
import http.server
import os
import socket
import threading

import pytest

from dezero import download
from dezero.download import DownloadError, get_cache_dir, get_file


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path == '/short.bin':  # announces more bytes than it sends, then hangs up
            self.send_response(200)
            self.send_header('Content-Length', '1000')
            self.end_headers()
            self.wfile.write(b'x' * 10)
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path/served`` on 127.0.0.1; yields (base URL, served dir, request log)."""
    served = tmp_path / 'served'
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(served)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{httpd.server_address[1]}/', served, httpd.requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / 'cache'
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(directory))
    monkeypatch.setattr(download, '_TIMEOUT_S', 10)  # a stuck local server fails the test quickly
    return directory


def closed_port_url(name):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}/{name}'


def leftovers(directory):
    return sorted(p for p in os.listdir(directory) if p.endswith('.part')) if directory.exists() else []


def test_cache_dir_default_and_env_read_at_call_time(monkeypatch, tmp_path):
    monkeypatch.delenv('DEZERO_CACHE_DIR', raising=False)
    assert download.cache_dir == os.path.join(os.path.expanduser('~'), '.dezero')
    assert get_cache_dir() == download.cache_dir
    monkeypatch.setenv('DEZERO_CACHE_DIR', str(tmp_path))
    assert get_cache_dir() == str(tmp_path)


def test_download_then_reuse_without_network(server, cache):
    base, served, requests = server
    body = os.urandom(300_000)  # several chunks
    (served / 'data.bin').write_bytes(body)
    path = get_file(base + 'data.bin')
    assert path == str(cache / 'data.bin')
    with open(path, 'rb') as f:
        assert f.read() == body
    assert requests == ['/data.bin']
    assert leftovers(cache) == []
    # Present now: reused with no request, even from a URL nobody answers.
    assert get_file(closed_port_url('data.bin')) == path
    assert get_file(base + 'data.bin') == path
    assert requests == ['/data.bin']


def test_file_name_and_sub_folder(server, cache):
    base, served, _ = server
    (served / 'a.txt').write_bytes(b'hello')
    path = get_file(base + 'a.txt?version=2', 'sets/b.txt')
    assert path == os.path.join(str(cache), 'sets', 'b.txt')
    with open(path, 'rb') as f:
        assert f.read() == b'hello'


def test_checksum_accepted(server, cache):
    base, served, _ = server
    (served / 'ok.bin').write_bytes(b'payload')
    path = get_file(base + 'ok.bin', sha256=hashlib.sha256(b'payload').hexdigest().upper())
    assert os.path.exists(path)


def test_checksum_mismatch_leaves_nothing(server, cache):
    base, served, _ = server
    (served / 'bad.bin').write_bytes(b'payload')
    with pytest.raises(DownloadError, match=r"SHA-256 of the file 'bad.bin'.*expected 0{64}"):
        get_file(base + 'bad.bin', sha256='0' * 64)
    assert not (cache / 'bad.bin').exists()
    assert leftovers(cache) == []


def test_http_404_names_url_file_and_directory(server, cache):
    base, _, _ = server
    with pytest.raises(DownloadError) as info:
        get_file(base + 'missing.gz')
    message = str(info.value)
    assert base + 'missing.gz' in message and 'HTTP 404' in message
    assert str(cache / 'missing.gz') in message
    assert info.value.reason.startswith('HTTP 404 ')
    assert os.listdir(cache) == []


def test_connection_refused(cache):
    url = closed_port_url('x.npz')
    with pytest.raises(DownloadError, match='could not download .*x.npz.*save it as'):
        get_file(url)
    assert os.listdir(cache) == []


def test_short_body_is_an_error_not_a_file(server, cache):
    base, _, _ = server
    with pytest.raises(DownloadError, match='closed 990 bytes before the end'):
        get_file(base + 'short.bin')
    assert os.listdir(cache) == []


@pytest.mark.parametrize('name', ['../escape.txt', '/abs/path.txt', 'a/../../b', ''])
def test_file_name_must_stay_inside_cache(cache, name):
    with pytest.raises(ValueError, match='get_file: file_name'):
        get_file('http://127.0.0.1:9/x', name)


def test_url_without_file_name(cache):
    with pytest.raises(ValueError, match='cannot take a file name'):
        get_file('http://127.0.0.1:9/')


def test_invalid_url(cache):
    with pytest.raises(ValueError, match="get_file: invalid URL 'not a url'"):
        get_file('not a url', 'x.bin')


def test_percentage_line_without_tqdm(server, cache, monkeypatch, capsys):
    base, served, _ = server
    (served / 'p.bin').write_bytes(b'z' * 200_000)
    import builtins
    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name == 'tqdm':
            raise ImportError('no tqdm')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_tqdm)
    get_file(base + 'p.bin')
    err = capsys.readouterr().err
    assert 'Downloading p.bin' in err and '100.0%' in err
