"""Checks on the paths a user names (study folders, --out), made before anything is written: a one-line
UserError names the path instead of an OSError traceback from deep inside a write."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from dse.errors import UserError

SHOWN_CHARS = 80  # a pasted 5,000-character value is shown by its start and its length


def shown(value: object) -> str:
    """A user's value for an error line: repr, shortened when very long."""
    text = str(value)
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... ({len(text):,} characters)"


def _stat(path: Path, what: str) -> os.stat_result | None:
    """stat() of path, None when it does not exist; a name too long or a file used as a folder is the user's."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise UserError(f"{what} {shown(path)}: a part of the path is a file, not a folder") from None
    except OSError as exc:
        reason = "name too long" if exc.errno == errno.ENAMETOOLONG else (exc.strerror or str(exc))
        raise UserError(f"{what} {shown(path)}: {reason}") from None


def check_output_folder(path: str | Path, what: str = "folder") -> Path:
    """The folder `path` exists or can be created, and can be written: else one line naming it."""
    path = Path(path)
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            raise UserError(f"{what} {shown(path)}: name too long (a path component of {len(part):,} characters; "
                            "at most 255 bytes)")
    st = _stat(path, what)
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise UserError(f"{what} {shown(path)}: exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{what} {shown(path)}: not writable")
        return path
    parent = path.absolute().parent
    while _stat(parent, what) is None and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{what} {shown(path)}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{what} {shown(path)}: cannot be created ({parent} is not writable)")
    return path


def check_input_folder(path: str | Path, what: str = "study folder") -> Path:
    """An existing folder: else one line naming it (no such folder, a file, a name too long)."""
    path = Path(path)
    st = _stat(path, what)
    if st is None:
        raise UserError(f"{shown(path)}: no such {what}")
    if not path.is_dir():
        raise UserError(f"{shown(path)}: not a {what} (a file)")
    return path


def check_output_file(path: str | Path, what: str = "file") -> Path:
    """A file that can be (re)written: not a folder, its folder usable."""
    path = Path(path)
    st = _stat(path, what)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise UserError(f"{what} {shown(path)}: is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{what} {shown(path)}: not a regular file")
    if not path.name:
        raise UserError(f"{what} {shown(path)}: names no file")
    check_output_folder(path.absolute().parent, what)
    return path
