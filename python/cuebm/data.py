"""The toy 2-D datasets (TorchEBM's classes and parameter names) and cuEBM's DataLoader."""

from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np

from . import _cuebm
from ._arrays import Array, prepare


def make_dataset(name: str, seed: Optional[int] = 42, **params: Any) -> np.ndarray:
    """A dataset by name (cuebm.dataset_names()) as an (n, 2) float32 NumPy array; params
    override the defaults by cuEBM's field names (n, std, components, radius, ...)."""
    return _cuebm.make_dataset(name, {k: float(v) for k, v in params.items()}, seed)


def gaussian_mixture_centres(n_components: int, radius: float) -> np.ndarray:
    """(K, 2) centres of GaussianMixtureDataset, in its order."""
    return _cuebm.gaussian_mixture_centres(n_components, radius)


def eight_gaussians_centres(scale: float = 2.0) -> np.ndarray:
    """(8, 2) centres of EightGaussiansDataset, in its order."""
    return _cuebm.eight_gaussians_centres(scale)


class _SyntheticDataset:
    """An (n, 2) float32 dataset drawn once from a seed (no global random state)."""

    _name = ""

    def __init__(self, seed: Optional[int], **params: Any) -> None:
        self.seed = 42 if seed is None else int(seed)
        self.params = params
        self.data = make_dataset(self._name, self.seed, **params)

    def get_data(self) -> np.ndarray:
        """The points, (n, 2) float32 NumPy."""
        return self.data

    def as_tensor(self) -> Any:
        """The points as a torch tensor sharing memory with .data."""
        import torch

        return torch.from_numpy(self.data)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{type(self).__name__}({args}, seed={self.seed})"


class GaussianMixtureDataset(_SyntheticDataset):
    """K isotropic Gaussians on a circle of `radius` (behaviour.md)."""

    _name = "gaussian_mixture"

    def __init__(self, n_samples: int = 2000, n_components: int = 8, std: float = 0.05,
                 radius: float = 1.0, seed: Optional[int] = None) -> None:
        super().__init__(seed, n=n_samples, components=n_components, std=std, radius=radius)


class EightGaussiansDataset(_SyntheticDataset):
    _name = "eight_gaussians"

    def __init__(self, n_samples: int = 2000, std: float = 0.02, scale: float = 2.0,
                 seed: Optional[int] = None) -> None:
        super().__init__(seed, n=n_samples, std=std, scale=scale)


class TwoMoonsDataset(_SyntheticDataset):
    _name = "two_moons"

    def __init__(self, n_samples: int = 2000, noise: float = 0.05,
                 seed: Optional[int] = None) -> None:
        super().__init__(seed, n=n_samples, noise=noise)


class SwissRollDataset(_SyntheticDataset):
    _name = "swiss_roll"

    def __init__(self, n_samples: int = 2000, noise: float = 0.05, arclength: float = 3.0,
                 seed: Optional[int] = None) -> None:
        super().__init__(seed, n=n_samples, noise=noise, arclength=arclength)


class CircleDataset(_SyntheticDataset):
    _name = "circle"

    def __init__(self, n_samples: int = 2000, noise: float = 0.05, radius: float = 1.0,
                 seed: Optional[int] = None) -> None:
        super().__init__(seed, n=n_samples, noise=noise, radius=radius)


class CheckerboardDataset(_SyntheticDataset):
    _name = "checkerboard"

    def __init__(self, n_samples: int = 2000, range_limit: float = 4.0, noise: float = 0.01,
                 seed: Optional[int] = None) -> None:
        super().__init__(seed, n=n_samples, range=range_limit, noise=noise)


class PinwheelDataset(_SyntheticDataset):
    _name = "pinwheel"

    def __init__(self, n_samples: int = 2000, n_classes: int = 5, noise: float = 0.05,
                 radial_scale: float = 2.0, angular_scale: float = 0.1, spiral_scale: float = 5.0,
                 seed: Optional[int] = None) -> None:
        super().__init__(seed, n=n_samples, classes=n_classes, noise=noise, radial=radial_scale,
                         angular=angular_scale, spiral=spiral_scale)


class GridDataset(_SyntheticDataset):
    _name = "grid"

    def __init__(self, n_samples_per_dim: int = 10, range_limit: float = 1.0, noise: float = 0.01,
                 seed: Optional[int] = None) -> None:
        super().__init__(seed, n_per_side=n_samples_per_dim, range=range_limit, noise=noise)


class DataLoader:
    """Mini-batches of an (n, dim) array, as cuEBM's C++ trainer draws them: epoch e visits
    the rows in a permutation keyed by (seed, e) when shuffling. Iterating the loader runs the
    next epoch; loader.epoch(e) runs epoch e. Batches are float32 NumPy arrays, or torch
    tensors when `data` is one."""

    def __init__(self, data: Array, batch_size: int, shuffle: bool = True, drop_last: bool = True,
                 seed: Optional[int] = 0) -> None:
        if isinstance(data, _SyntheticDataset):
            data = data.data
        array, self._like = prepare(data)
        self._loader = _cuebm.DataLoader(array, batch_size, shuffle, drop_last, seed)
        self._next_epoch = 0

    def __len__(self):
        return self._loader.num_batches()

    def epoch(self, e: int) -> Iterator[np.ndarray]:
        """The batches of epoch e."""
        self._loader.start_epoch(e)
        self._next_epoch = e + 1
        for b in range(self._loader.num_batches()):
            batch = self._loader.batch(b)
            if self._like is not None:
                import torch

                batch = torch.from_numpy(batch)
            yield batch

    def __iter__(self):
        return self.epoch(self._next_epoch)
