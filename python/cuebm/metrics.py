"""Judging a trained 2-D model (exact normalisation on a grid, NLL, MMD, modes)."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from . import _cuebm
from ._arrays import Array, prepare

_GRID = (-2.5, 2.5, -2.5, 2.5, 100, 100)


def grid_points(grid: int = _GRID) -> np.ndarray:
    """The grid (xmin, xmax, ymin, ymax, nx, ny) as (nx * ny, 2) points, x fastest."""
    return _cuebm.grid_points(tuple(grid))


def grid_log_partition(energy: Any, temperature: float, grid: int = _GRID) -> float:
    """log Z of exp(-E / T) on the grid (a Riemann sum, in double)."""
    return _cuebm.grid_log_partition(energy._impl, temperature, tuple(grid))


def test_nll(energy: Any, x_test: Array, temperature: float, grid: int = _GRID) -> float:
    """mean E(x_test) / T + log Z: nats per point."""
    return _cuebm.test_nll(energy._impl, prepare(x_test)[0], temperature, tuple(grid))


test_nll.__test__ = False  # not a pytest test


def mmd2_rbf(a: Any, b: Any) -> float:
    """Unbiased MMD^2 between two samples (RBF kernel, median-heuristic bandwidth)."""
    return _cuebm.mmd2_rbf(prepare(a)[0], prepare(b)[0])


def mode_report(samples: Array, centres: Array, std: float, radius_stds: float = 3.0,
                min_count: int = 0) -> Dict[str, Any]:
    """Mode coverage of 2-D samples: covered, total, share_near_mode, weights, counts."""
    return _cuebm.mode_report(prepare(samples)[0], prepare(centres)[0], std, radius_stds,
                              min_count)
