"""Judging a trained 2-D model (exact normalisation on a grid, NLL, MMD, modes)."""

from . import _cuebm
from ._arrays import prepare

_GRID = (-2.5, 2.5, -2.5, 2.5, 100, 100)


def grid_points(grid=_GRID):
    """The grid (xmin, xmax, ymin, ymax, nx, ny) as (nx * ny, 2) points, x fastest."""
    return _cuebm.grid_points(tuple(grid))


def grid_log_partition(energy, temperature, grid=_GRID):
    """log Z of exp(-E / T) on the grid (a Riemann sum, in double)."""
    return _cuebm.grid_log_partition(energy._impl, temperature, tuple(grid))


def test_nll(energy, x_test, temperature, grid=_GRID):
    """mean E(x_test) / T + log Z: nats per point."""
    return _cuebm.test_nll(energy._impl, prepare(x_test)[0], temperature, tuple(grid))


test_nll.__test__ = False  # not a pytest test


def mmd2_rbf(a, b):
    """Unbiased MMD^2 between two samples (RBF kernel, median-heuristic bandwidth)."""
    return _cuebm.mmd2_rbf(prepare(a)[0], prepare(b)[0])


def mode_report(samples, centres, std, radius_stds=3.0, min_count=0):
    """Mode coverage of 2-D samples: covered, total, share_near_mode, weights, counts."""
    return _cuebm.mode_report(prepare(samples)[0], prepare(centres)[0], std, radius_stds,
                              min_count)
