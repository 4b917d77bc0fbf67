"""User errors: mistakes the user can fix (a study file, a folder, a name). The CLI prints them as one line and
exits 2; everything else is a bug and keeps its traceback."""
from __future__ import annotations

EXIT_USAGE = 2  # a user error or a usage error: one line on stderr
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); the storage is consistent
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a program its pipe reader left


class UserError(Exception):
    """A mistake in what the user asked for; str() is one line that says what and where."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))  # one line, whatever the cause said


class StudyFileError(UserError):
    """A study file that cannot be run: `file: key: problem (value)`."""

    def __init__(self, path: object, key: str | None, message: str) -> None:
        self.path = str(path)
        self.key = key
        super().__init__(f"{self.path}: {key}: {message}" if key else f"{self.path}: {message}")


class StudyFolderError(UserError):
    """A study folder that does not hold the study asked for (another study, a changed spec, no storage)."""
