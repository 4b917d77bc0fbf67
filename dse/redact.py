"""Passwords in storage URLs: never written to disk nor printed.

A storage URL such as `postgresql://dse:PW@host/microtl` is shown and stored as `postgresql://dse:***@host/microtl`
(study.json, the copied study.toml, the stored study spec, every message). The real URL lives only in the
command line or study file the user gave; a command that reads a folder (`dse report`, `dse show`, ...) gets the
password back from `MICROTL_STORAGE_URL` (the full URL) or, without it, the database client's own sources
(PostgreSQL: PGPASSWORD or ~/.pgpass), because the stored URL has none.
"""
from __future__ import annotations

import os
import re

MASK = "***"
ENV_URL = "MICROTL_STORAGE_URL"  # the full storage URL, password included, for commands that read a folder

# scheme://user:password@ ; the password stops at the last character before '@' (SQLAlchemy's own URL grammar
# admits no '@' in it: a literal '@' must be written %40)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*:)(?P<password>[^@\s'\"]*)@")


def mask(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return _USERINFO.sub(lambda m: f"{m['head']}{MASK}@" if m["password"] else m[0], str(text))


def has_password(url: str | None) -> bool:
    m = _USERINFO.search(url or "")
    return bool(m and m["password"] and m["password"] != MASK)


def restore(stored: str) -> str:
    """The URL to open for a masked `stored` URL: `MICROTL_STORAGE_URL` when its masked form is `stored`, else
    `stored` without the password (the client then reads PGPASSWORD or ~/.pgpass)."""
    if f":{MASK}@" not in stored:
        return stored
    given = os.environ.get(ENV_URL, "")
    if given and mask(given) == stored:
        return given
    return _USERINFO.sub(lambda m: m["head"][:-1] + "@", stored, count=1)
