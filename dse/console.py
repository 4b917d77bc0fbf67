"""One way to tell the user something while a command runs: a line on stderr, flushed (stdout carries results)."""
from __future__ import annotations

import sys


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
