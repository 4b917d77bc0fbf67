"""The exact hypervolume against two brute-force definitions: counting the dominated unit cells of integer points,
and inclusion-exclusion over the boxes the points span."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from dse.reports.hypervolume import hypervolume, pareto_mask


def cells_dominated(points: np.ndarray, ref: np.ndarray) -> int:
    """Unit cells [c, c+1) below the reference whose lower corner some point dominates (integer data: exact)."""
    count = 0
    for cell in itertools.product(*(range(int(r)) for r in ref)):
        if np.any(np.all(points <= np.array(cell), axis=1)):
            count += 1
    return count


def inclusion_exclusion(points: np.ndarray, ref: np.ndarray) -> float:
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(range(len(points)), k):
            corner = points[list(subset)].max(axis=0)
            total += (-1) ** (k + 1) * float(np.prod(np.clip(ref - corner, 0, None)))
    return total


@pytest.mark.parametrize("dim", [2, 3])
def test_matches_cell_counting_on_integer_points(dim):
    rng = np.random.default_rng(dim)
    ref = np.full(dim, 9.0)
    for _ in range(40):
        points = rng.integers(0, 11, size=(rng.integers(1, 12), dim)).astype(float)  # some beyond the reference
        assert hypervolume(points, ref) == cells_dominated(points, ref)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_matches_inclusion_exclusion_on_real_points(dim):
    rng = np.random.default_rng(10 + dim)
    ref = rng.uniform(0.8, 1.2, size=dim)
    for _ in range(30):
        points = rng.uniform(0, 1.1, size=(rng.integers(1, 9), dim))
        assert hypervolume(points, ref) == pytest.approx(inclusion_exclusion(points, ref), rel=1e-12, abs=1e-15)


def test_known_values_and_edge_cases():
    assert hypervolume([[1, 1]], [3, 2]) == 2.0
    assert hypervolume([[0, 2], [1, 1], [2, 0]], [3, 3]) == 6.0
    assert hypervolume([[0, 0, 0]], [1, 2, 3]) == 6.0
    assert hypervolume([[1, 1, 1], [1, 1, 1], [2, 2, 2]], [3, 3, 3]) == 8.0  # duplicates and dominated points
    assert hypervolume([[3, 0]], [3, 3]) == 0.0  # on the reference: adds nothing
    assert hypervolume(np.empty((0, 3)), [1, 1, 1]) == 0.0
    with pytest.raises(ValueError, match="1 to 3 objectives"):
        hypervolume([[0, 0, 0, 0]], [1, 1, 1, 1])
    with pytest.raises(ValueError, match="finite"):
        hypervolume([[np.nan, 0]], [1, 1])


def test_pareto_mask_keeps_exactly_the_non_dominated_points():
    pts = np.array([[0, 2], [1, 1], [2, 0], [1, 2], [2, 2], [1, 1]])
    assert pareto_mask(pts).tolist() == [True, True, True, False, False, True]
    rng = np.random.default_rng(0)
    pts = rng.uniform(size=(60, 3))
    mask = pareto_mask(pts)
    assert hypervolume(pts[mask], [1, 1, 1]) == pytest.approx(hypervolume(pts, [1, 1, 1]))
    assert 0 < mask.sum() < 60


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_optunas_routine_equals_our_sweeps(dim):
    """hypervolume() uses Optuna's private routine; it must give our exact sweeps' numbers."""
    from dse.reports.hypervolume import exact_hypervolume

    rng = np.random.default_rng(10 + dim)
    for n in (1, 5, 60):
        points = rng.random((n, dim))
        ref = np.full(dim, 1.1)
        assert hypervolume(points, ref) == pytest.approx(exact_hypervolume(points, ref), rel=1e-12, abs=1e-15)
