"""One thread per worker process: the environment variables numpy's BLAS and OpenMP (and torch) read when they are
first imported. Two multi-threaded processes on two cores run slower than one."""
from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")


def limit_threads() -> None:
    """One thread per worker: effective only before numpy/torch are imported (the `dse worker` entry does it
    first); an explicit setting in the environment wins."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
