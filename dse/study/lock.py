"""One writer per study folder: `dse run` and `dse report` hold an exclusive lock on the study folder while they write.

The lock is the kernel's (fcntl.flock on the folder itself), so it is released however the holder ends - exit,
Ctrl-C, kill -9, a crash - and is never stale; nothing is written for it (a refused or failed command leaves the
folder exactly as it was). Who holds it (pid, command) is read back from the kernel's lock table (/proc/locks on
Linux) for the refusal message. Readers (`dse show`, a worker, optuna-dashboard) take no lock: SQLite's WAL mode
lets them read while the writer writes.
"""
from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from dse.errors import StudyFolderError
from dse.paths import shown

PROC_LOCKS = Path("/proc/locks")


@contextmanager
def folder_lock(folder: str | Path, command: str):
    """Hold the folder's writer lock for the block; refuse in one line (StudyFolderError) when another process holds
    it. A folder created here for the lock is removed again when the block fails and left it empty."""
    folder = Path(folder)
    try:
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise StudyFolderError(f"{shown(folder)}: cannot use it as a study folder ({exc.strerror or exc})") from None
    ok = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StudyFolderError(f"{folder} is being written by {holder(folder)}; wait for it to finish (one "
                                   f"writer per study folder; `dse show` reads it meanwhile; this was {command})") \
                from None
        yield
        ok = True
    finally:
        os.close(fd)  # releases the lock
        if created and not ok:
            try:
                folder.rmdir()  # only if still empty
            except OSError:
                pass


def holder(folder: Path) -> str:
    """The process holding the folder's lock, as `dse run` (pid N on HOST), from the kernel's lock table."""
    try:
        inode = os.stat(folder).st_ino
        for line in PROC_LOCKS.read_text().splitlines():
            fields = line.split()
            if "FLOCK" in fields and len(fields) >= 6 and fields[5].endswith(f":{inode}") and fields[4].isdigit():
                pid = int(fields[4])
                return f"{_command(pid)} (pid {pid} on {socket.gethostname()})"
    except OSError:
        pass
    return "another dse process"


def _command(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "another dse process"
    for i, arg in enumerate(argv[:-1]):
        if arg == "dse" or arg.endswith("/dse"):
            return f"`dse {argv[i + 1]}`"
    return "another dse process"
