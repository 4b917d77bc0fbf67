"""Builds the instruction-count plugin (insncount.c) with the host C compiler, once per source version.

The shared object is cached under ``<cache root>/qemu-plugin/<sha256 of the source>/``, the cache root being the
project's (``$MICROTL_CACHE``, else ``$XDG_CACHE_HOME/microtl-dse``, else ``~/.cache/microtl-dse``), so editing the source rebuilds it and
concurrent builders never see a half-written file (compile to a temporary name, then rename).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("insncount.c")
LIB_NAME = "libinsncount.so"
CFLAGS = ("-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden")


class PluginBuildError(RuntimeError):
    """The host C compiler is missing or failed on the plugin source."""


def plugin_source() -> Path:
    return SOURCE


def cache_root() -> Path:
    env = os.environ.get("MICROTL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "microtl-dse"


def _host_cc() -> str:
    for cand in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cand and shutil.which(cand):
            return cand
    raise PluginBuildError("no host C compiler (cc/gcc/clang) found: run `make setup` (.ci/setup.sh installs gcc)")


def ensure_plugin(cache_dir: Path | None = None) -> Path:
    """Path to the compiled plugin, compiling it on first use."""
    src = SOURCE.read_bytes()
    digest = hashlib.sha256(src + " ".join(CFLAGS).encode()).hexdigest()[:16]
    out_dir = (Path(cache_dir) if cache_dir is not None else cache_root() / "qemu-plugin") / digest
    lib = out_dir / LIB_NAME
    if lib.is_file():
        return lib
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home: fall back to a per-user temporary cache
        if cache_dir is not None:
            raise
        out_dir = Path(tempfile.gettempdir()) / f"microtl-dse-{os.getuid()}" / "qemu-plugin" / digest
        lib = out_dir / LIB_NAME
        if lib.is_file():
            return lib
        out_dir.mkdir(parents=True, exist_ok=True)
    cc = _host_cc()
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=out_dir)
    os.close(fd)
    try:
        proc = subprocess.run([cc, *CFLAGS, "-o", tmp, str(SOURCE)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise PluginBuildError(f"building the QEMU plugin failed ({cc}):\n{proc.stderr.strip()}")
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib
