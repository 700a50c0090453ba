"""evdet.utils.lock: exclusive lock files, stale holders taken over, live holders named."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evdet.utils.lock import FileLock, LockHeld, read_holder


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def test_one_holder_at_a_time_and_the_live_one_is_named(tmp_path: Path):
    path = tmp_path / ".lock"
    with FileLock(path, what="thing") as lock:
        assert path.read_text() == f"{os.getpid()} {socket.gethostname()}\n"
        assert read_holder(path).pids == (os.getpid(),)
        with pytest.raises(LockHeld, match=rf"thing is held by process {os.getpid()}; wait") as err:
            FileLock(path, what="thing").acquire()
        assert err.value.holder.pids == (os.getpid(),)
        lock.add_pid(123)
        assert read_holder(path).pids == (os.getpid(), 123)
    assert not path.exists()


def test_reentrant_lock_is_entered_again_and_left_to_the_outer_holder(tmp_path: Path):
    path = tmp_path / ".lock"
    with FileLock(path, reentrant=True):
        with FileLock(path, reentrant=True):
            pass
        assert path.exists()                    # the inner exit did not release it
    assert not path.exists()


def test_stale_holders_are_taken_over(tmp_path: Path):
    path = tmp_path / ".lock"
    path.write_text(f"{_dead_pid()} {socket.gethostname()}\n")          # its process is gone
    with FileLock(path):
        assert read_holder(path).pids == (os.getpid(),)
    path.write_text(f"{_dead_pid()}\n")                                  # no host: this host
    FileLock(path).acquire().release()
    path.write_text(f"{os.getpid()} elsewhere\n")                        # another host, fresh
    with pytest.raises(LockHeld, match="held by process .* on elsewhere"):
        FileLock(path, stale_after_s=600).acquire()
    os.utime(path, (time.time() - 700, time.time() - 700))               # silent for 700 s
    FileLock(path, stale_after_s=600).acquire().release()
    path.write_text("")                                                  # created, pid not yet written
    with pytest.raises(LockHeld, match="another process is starting"):
        FileLock(path).acquire()
    os.utime(path, (0, 0))                                               # empty and old: stale
    FileLock(path).acquire().release()


RACER = """
import sys, time
from pathlib import Path
from evdet.utils.lock import FileLock, LockHeld
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
try:
    lock = FileLock(Path(sys.argv[1])).acquire()
except LockHeld:
    print("lost")
else:
    print("won")
    time.sleep(1.5)
    lock.release()
"""


def test_racers_on_a_stale_lock_leave_exactly_one_holder(tmp_path: Path):
    path, go = tmp_path / ".lock", tmp_path / "go"
    path.write_text(f"{_dead_pid()} {socket.gethostname()}\n")
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(path), str(go)], stdout=subprocess.PIPE, text=True)
              for _ in range(4)]
    time.sleep(0.5)
    go.touch()
    outs = sorted(p.communicate(timeout=30)[0].strip() for p in racers)
    assert outs == ["lost", "lost", "lost", "won"]
