"""One writer per study folder: `dse run` and `dse report` hold an exclusive lock on DIR/.dse.lock while they write.

The lock is the kernel's (fcntl.flock on the open file), so it is released however the holder ends - exit, Ctrl-C,
kill -9, a crash - and is never stale; the file only says who holds it (pid, host, command, start) for the refusal
message. Readers (`dse show`, a worker, optuna-dashboard) take no lock: SQLite's WAL mode lets them read while the
writer writes.
"""
from __future__ import annotations

import fcntl
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import StudyFolderError

LOCK_FILE = ".dse.lock"


@contextmanager
def folder_lock(folder: str | Path, command: str):
    """Hold the folder's writer lock for the block; refuse in one line (StudyFolderError) when another process holds
    it. A folder created here for the lock is removed again when the block fails and left it empty."""
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StudyFolderError(f"{folder}: cannot use it as a study folder ({exc.strerror or exc})") from None
    ok = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 400, 0).decode("utf-8", "replace").strip() or "another process"
            raise StudyFolderError(f"{folder} is being written by {holder}; wait for it to finish (one writer per "
                                   "study folder; `dse show` reads it meanwhile)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"`{command}` (pid {os.getpid()} on {socket.gethostname()}, since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')})\n".encode(), 0)
        yield
        ok = True
    finally:
        os.close(fd)  # releases the lock
        if created and not ok:
            _remove_if_only_lock(folder)


def _remove_if_only_lock(folder: Path) -> None:
    try:
        if [p.name for p in folder.iterdir()] == [LOCK_FILE]:
            (folder / LOCK_FILE).unlink()
            folder.rmdir()
    except OSError:
        pass
