"""dezero._files: atomic writes, and the clean-up of temporaries that killed writers leave behind."""
import os
import select
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dezero import Parameter
from dezero._files import atomic_file, host_tag, remove_stale_temporaries
from dezero.layers import Layer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
posix_only = pytest.mark.skipif(not hasattr(signal, 'SIGKILL'), reason='needs POSIX signals')

# A writer that saves a complete file holding ``value``, then starts a second save whose archive
# writer stalls half-way (after writing real bytes into the temporary) and says so on stdout.
STALLING_WRITER = textwrap.dedent('''
    import sys, time
    import numpy as np
    from dezero import Parameter
    from dezero.layers import Layer

    path, value = sys.argv[1], float(sys.argv[2])
    layer = Layer()
    layer.W = Parameter(np.full((64, 64), value))
    layer.save_weights(path)

    def stalled_savez(file, **arrays):
        file.write(b'PK\\x03\\x04 half an archive')
        file.flush()
        print('inside', flush=True)
        time.sleep(120)

    np.savez = stalled_savez
    layer.W.data += 1
    layer.save_weights(path)
''')


def temporaries(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith('.'))


def start_writer(path, value):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.Popen([sys.executable, '-c', STALLING_WRITER, str(path), str(value)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def wait_until_inside(proc, timeout=60.0):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b''
    if line.strip() != b'inside':
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f'writer never reached the middle of its save: {line!r}\n{err.decode()}')


def load_value(path):
    layer = Layer()
    layer.W = Parameter(np.zeros((64, 64)))
    layer.load_weights(path)
    return layer.W.data


def layer_holding(value):
    layer = Layer()
    layer.W = Parameter(np.full((64, 64), float(value)))
    return layer


@posix_only
def test_writers_killed_mid_save_leave_the_last_good_file_and_no_pile_of_temporaries(tmp_path):
    path = tmp_path / 'model.npz'
    for value in range(5):
        proc = start_writer(path, value)
        try:
            wait_until_inside(proc)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)  # reaped: a zombie would still count as a live writer
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        # The killed save never replaced the file: it holds this writer's complete first save.
        np.testing.assert_array_equal(load_value(path), np.full((64, 64), float(value)))
        # Each writer's first save removed the previous writer's temporary: only its own is left.
        leftovers = temporaries(tmp_path)
        assert len(leftovers) == 1, leftovers
        assert leftovers[0].startswith(f'.model.npz.{host_tag()}.{proc.pid}.')
        assert os.path.getsize(tmp_path / leftovers[0]) > 0

    layer_holding(7.0).save_weights(path)
    assert temporaries(tmp_path) == []
    np.testing.assert_array_equal(load_value(path), np.full((64, 64), 7.0))


@posix_only
def test_a_live_writers_temporary_is_kept(tmp_path):
    path = tmp_path / 'model.npz'
    proc = start_writer(path, 1.0)
    try:
        wait_until_inside(proc)
        (live,) = temporaries(tmp_path)
        layer_holding(2.0).save_weights(path)  # the stalled writer is alive: its file stays
        assert temporaries(tmp_path) == [live]
        np.testing.assert_array_equal(load_value(path), np.full((64, 64), 2.0))
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert remove_stale_temporaries(str(path)) == [str(tmp_path / live)]
    assert temporaries(tmp_path) == []


def dead_pid():
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait(timeout=60)
    return proc.pid


@posix_only
def test_only_this_hosts_dead_writers_of_the_same_target_are_removed(tmp_path):
    pid = dead_pid()
    stale = f'.out.bin.{host_tag()}.{pid}.abc_123.tmp'
    kept = [
        f'.out.bin.{"0" * 8 if host_tag() != "0" * 8 else "1" * 8}.{pid}.abc_123.tmp',  # another host
        f'.out.bin.{host_tag()}.{os.getpid()}.abc_123.tmp',  # a live writer (this process)
        f'.out.bin.{host_tag()}.{pid}.abc_123.part',  # another suffix
        f'.other.bin.{host_tag()}.{pid}.abc_123.tmp',  # another target
        '.out.bin.notes',  # not a temporary at all
    ]
    for name in [stale] + kept:
        (tmp_path / name).write_bytes(b'x')
    with atomic_file(str(tmp_path / 'out.bin')) as tmp:
        with open(tmp, 'wb') as f:
            f.write(b'new')
    assert (tmp_path / 'out.bin').read_bytes() == b'new'
    assert temporaries(tmp_path) == sorted(kept)


def test_temporary_names_carry_host_and_pid_and_vanish_after_success_or_failure(tmp_path):
    target = tmp_path / 'data.txt'
    with atomic_file(str(target)) as tmp:
        assert os.path.basename(tmp).startswith(f'.data.txt.{host_tag()}.{os.getpid()}.')
        assert tmp.endswith('.tmp')
        with open(tmp, 'w') as f:
            f.write('done')
    assert target.read_text() == 'done'
    with pytest.raises(RuntimeError, match='interrupted'):
        with atomic_file(str(target), suffix='.part') as tmp:
            assert tmp.endswith('.part')
            with open(tmp, 'w') as f:
                f.write('half')
            raise RuntimeError('interrupted')
    assert target.read_text() == 'done'
    assert os.listdir(tmp_path) == ['data.txt']
