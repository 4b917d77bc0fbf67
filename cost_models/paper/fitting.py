"""Numerical helpers of the calibration: identifiability, non-negative and robust linear fits.

Small data sets (a published table, a handful of board runs) rarely separate every count or term: columns that
are (nearly) proportional in the data carry no separate information. Rather than let the solver split them
arbitrarily, columns are admitted in a stated priority order and only when they add a new direction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, nnls


@dataclass(frozen=True)
class Selection:
    selected: tuple[int, ...]  # column indices admitted to the fit
    unobserved: tuple[int, ...]  # all-zero columns: the data say nothing about them
    absorbed: tuple[int, ...]  # in the span of earlier admitted columns: not separable from them


def select_identifiable(X: np.ndarray, tol: float) -> Selection:
    """Admit columns in order; a column is admitted when the part of it (unit-normalised) orthogonal to the
    columns admitted before has norm >= tol."""
    selected: list[int] = []
    unobserved: list[int] = []
    absorbed: list[int] = []
    basis = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        col = X[:, j]
        norm = np.linalg.norm(col)
        if norm == 0:
            unobserved.append(j)
            continue
        v = col / norm
        if basis.shape[1]:
            v = v - basis @ (basis.T @ v)
        rest = np.linalg.norm(v)
        if rest < tol:
            absorbed.append(j)
            continue
        basis = np.column_stack([basis, v / rest])
        selected.append(j)
    return Selection(tuple(selected), tuple(unobserved), tuple(absorbed))


def fit_nonnegative(
    X: np.ndarray, y: np.ndarray, *, relative: bool, tol: float, robust_scale: float | None = None
) -> tuple[np.ndarray, Selection]:
    """Coefficients c >= 0 of X c = y for the identifiable columns (0 for the others), and the selection.

    relative: residuals are divided by |y| (each row weighs the same in percent); identifiability is judged on
    the same weighted design the solver sees.
    robust_scale: if given, refine with a soft-L1 loss at this residual scale, so one bad row cannot dominate.
    """
    w = 1.0 / np.abs(y) if relative else np.ones_like(y)
    A = X * w[:, None]
    b = y * w
    sel = select_identifiable(A, tol)
    out = np.zeros(X.shape[1])
    if not sel.selected:
        return out, sel
    A = A[:, list(sel.selected)]
    scale = np.linalg.norm(A, axis=0)
    c, _ = nnls(A / scale, b)
    if robust_scale is not None and len(b) > len(c):
        fit = least_squares(
            lambda z: (A / scale) @ z - b, c, bounds=(0, np.inf), loss="soft_l1",
            f_scale=robust_scale * (1.0 if relative else float(np.median(np.abs(b)))),
        )  # fmt: skip
        c = fit.x
    out[list(sel.selected)] = c / scale
    return out, sel
