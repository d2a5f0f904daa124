"""Energies with TorchEBM's names: MLPEnergy and the analytic energies."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import collections
import math

import numpy as np

from . import _cuebm
from ._arrays import Array, prepare, to_numpy, wrap

# PyTorch module class name -> cuEBM activation, with the settings cuEBM implements.
_TORCH_ACTIVATIONS = {
    "ReLU": "relu",
    "SiLU": "silu",
    "Tanh": "tanh",
    "Softplus": "softplus",
    "LeakyReLU": "leaky_relu",
    "GELU": "gelu",
}


class BaseEnergyFunction:
    """An energy E(x) evaluated by cuEBM's kernels on (n, dim) rows.

    Calling the energy (or .forward) returns E(x) as TorchEBM's energy functions do; .gradient
    returns dE/dx per row. Inputs: NumPy arrays or CPU torch tensors (float32 read in place,
    float64 converted); the result has the input's kind, float32.
    """

    def __init__(self, impl: Any) -> None:
        self._impl = impl

    @property
    def dim(self) -> int:
        """The dimension D of a row."""
        return self._impl.dim

    @property
    def name(self) -> str:
        """A short description of the energy."""
        return self._impl.name

    def __call__(self, x):
        return self.energy(x)

    def forward(self, x: Any) -> Any:
        """E(x), as TorchEBM's forward."""
        return self.energy(x)

    def energy(self, x: Any) -> Any:
        """E(x) of (n, dim) rows: shape (n,)."""
        a, like = prepare(x)
        return wrap(self._impl.energy(a), like)

    def gradient(self, x: Any) -> Any:
        """dE/dx of (n, dim) rows: shape (n, dim)."""
        a, like = prepare(x)
        return wrap(self._impl.gradient(a), like)

    def energy_and_gradient(self, x: Any) -> Tuple[Any, Any]:
        """(E(x), dE/dx) from one pass."""
        a, like = prepare(x)
        e, g = self._impl.energy_and_gradient(a)
        return wrap(e, like), wrap(g, like)

    def __repr__(self):
        return f"{type(self).__name__}({self.name})"


class MLPEnergy(BaseEnergyFunction):
    """The MLP energy Linear(D, h1), act, ..., Linear(hL, 1), output squeezed to (n,).

    Parameters are laid out and named as PyTorch's state_dict of a module holding
    `network = nn.Sequential(...)`: "network.0.weight" [h1, D], "network.0.bias" [h1],
    "network.2.weight" [h2, h1], ... Initialisation: PyTorch's nn.Linear distribution
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from Philox keyed by `seed`.

    hidden_dims: the hidden widths (an int h means (h, h), the tutorial's hidden_dim=64);
    activation: one of cuebm.activation_names() (relu, silu, tanh, softplus, leaky_relu, gelu).
    """

    def __init__(self, input_dim: int = 2, hidden_dims: Sequence[int] = (64, 64),
                 activation: Optional[str] = "relu", seed: Optional[int] = 0, *,
                 hidden_dim: Optional[int] = None, _impl: Any = None) -> None:
        if _impl is None:
            if hidden_dim is not None:
                hidden_dims = (hidden_dim, hidden_dim)
            if isinstance(hidden_dims, int):
                hidden_dims = (hidden_dims, hidden_dims)
            _impl = _cuebm.Mlp(int(input_dim), [int(h) for h in hidden_dims], activation, seed)
        super().__init__(_impl)

    @property
    def widths(self) -> List[int]:
        """[D, h1, ..., hL, 1]"""
        return list(self._impl.widths)

    @property
    def activation(self) -> str:
        """The activation's name ('relu', 'silu', ...)."""
        return self._impl.activation

    @property
    def num_parameters(self) -> int:
        """The number of weights and biases."""
        return self._impl.num_parameters

    def parameters(self) -> np.ndarray:
        """The flat parameters (state_dict order) as a writable NumPy view of the model."""
        return self._impl.parameters()

    def set_parameters(self, values: Array) -> None:
        """Copies a flat vector of num_parameters values into the model."""
        a, _ = prepare(values, "values")
        self._impl.set_parameters(a)

    def parameter_info(self) -> List[Tuple[str, List[int], int, int]]:
        """[(name, shape, offset, size)] in state_dict order."""
        return self._impl.parameter_info()

    def state_dict(self) -> Dict[str, np.ndarray]:
        """OrderedDict name -> NumPy array (copies) with PyTorch's names and shapes.

        For torch: {k: torch.from_numpy(v) for k, v in model.state_dict().items()}.
        """
        return collections.OrderedDict(self._impl.state_dict())

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Copies named arrays or tensors ("network.0.weight" or a bare Sequential's
        "0.weight") into the model after checking every name and shape."""
        arrays = {k: prepare(v, k)[0] for k, v in state_dict.items()}
        self._impl.load_state_dict(arrays, strict)

    def parameter_gradient(self, x: Any, coeff: Array) -> np.ndarray:
        """Gradient of sum_i coeff[i] E(x_i) with respect to the flat parameters."""
        a, like = prepare(x)
        c, _ = prepare(coeff, "coeff")
        return wrap(self._impl.parameter_gradient(a, c), like)

    def copy(self) -> "MLPEnergy":
        """An independent copy."""
        return MLPEnergy(_impl=self._impl.__copy__())

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes a safetensors model file (loads in PyTorch with safetensors.torch)."""
        _cuebm.save_mlp(str(path), self._impl)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], activation: Optional[str] = None) -> "MLPEnergy":
        """Reads a model file (or a checkpoint); `activation` when the file records none."""
        return cls(_impl=_cuebm.load_mlp(str(path), activation))

    @classmethod
    def from_torch(cls, module: Any) -> "MLPEnergy":
        """An MLPEnergy with the weights of a PyTorch MLP: an nn.Sequential of Linear layers
        and one of the six activations (ReLU, SiLU, Tanh, Softplus(beta 1, threshold 20),
        LeakyReLU(0.01), GELU('none')) ending in Linear(hL, 1), or a module holding one as
        `.network` (TorchEBM's tutorial MLPEnergy)."""
        widths, activation = _torch_mlp_layout(module)
        model = cls(widths[0], widths[1:-1], activation)
        model.load_state_dict(_sequential_of(module).state_dict())
        return model

    def to_torch(self) -> Any:
        """A cuebm.torch.TorchMLPEnergy (an nn.Module holding `network = nn.Sequential(...)`)
        with this model's weights, float32 on the CPU."""
        from .torch import TorchMLPEnergy

        module = TorchMLPEnergy(self.widths[0], self.widths[1:-1], self.activation)
        module.load_state_dict(
            {k: __import__("torch").from_numpy(v) for k, v in self.state_dict().items()}
        )
        return module


def _sequential_of(module):
    import torch.nn as nn

    if isinstance(module, nn.Sequential):
        return module
    network = getattr(module, "network", None)
    if isinstance(network, nn.Sequential):
        return network
    raise TypeError(
        f"expected an nn.Sequential or a module with a .network nn.Sequential, got "
        f"{type(module).__name__}"
    )


def _torch_mlp_layout(module):
    """([D, h1, ..., 1], activation name) of a PyTorch MLP, or ValueError naming the layer."""
    import torch.nn as nn

    layers = list(_sequential_of(module))
    widths, activation = [], None
    for i, layer in enumerate(layers):
        if i % 2 == 0:
            if not isinstance(layer, nn.Linear) or layer.bias is None:
                raise ValueError(f"layer {i} must be nn.Linear with a bias, got {layer!r}")
            if widths and layer.in_features != widths[-1]:
                raise ValueError(f"layer {i} takes {layer.in_features} inputs, expected {widths[-1]}")
            if not widths:
                widths.append(layer.in_features)
            widths.append(layer.out_features)
            continue
        name = _TORCH_ACTIVATIONS.get(type(layer).__name__)
        if name is None:
            raise ValueError(
                f"layer {i}: activation {type(layer).__name__} is not one of "
                f"{', '.join(_TORCH_ACTIVATIONS)}"
            )
        if name == "softplus" and (layer.beta != 1 or layer.threshold != 20):
            raise ValueError(f"layer {i}: Softplus needs beta=1, threshold=20, got {layer!r}")
        if name == "leaky_relu" and layer.negative_slope != 0.01:
            raise ValueError(f"layer {i}: LeakyReLU needs negative_slope=0.01, got {layer!r}")
        if name == "gelu" and getattr(layer, "approximate", "none") != "none":
            raise ValueError(f"layer {i}: GELU needs approximate='none', got {layer!r}")
        if activation is not None and name != activation:
            raise ValueError(f"layer {i}: mixed activations ({activation} and {name})")
        activation = name
    if len(layers) < 3 or len(layers) % 2 == 0:
        raise ValueError(
            f"expected Linear, act, ..., Linear with at least one hidden layer, got "
            f"{len(layers)} layers"
        )
    if widths[-1] != 1:
        raise ValueError(f"the last Linear must have 1 output, got {widths[-1]}")
    return widths, activation


class GaussianEnergy(BaseEnergyFunction):
    """E(x) = 1/2 (x - mean)^T cov^-1 (x - mean); cov symmetric positive definite."""

    def __init__(self, mean: Array, cov: Array) -> None:
        mean = np.asarray(to_numpy(mean), dtype=np.float32)
        cov = np.asarray(to_numpy(cov), dtype=np.float64)
        super().__init__(_cuebm.AnalyticEnergy.gaussian(mean, cov))


class DoubleWellEnergy(BaseEnergyFunction):
    """E(x) = barrier_height * sum_i (x_i^2 - b^2)^2 over dim coordinates."""

    def __init__(self, barrier_height: float = 2.0, b: Any = 1.0, dim: Optional[int] = 2) -> None:
        super().__init__(_cuebm.AnalyticEnergy.double_well(dim, barrier_height, b))


class HarmonicEnergy(BaseEnergyFunction):
    """E(x) = k / 2 * |x|^2."""

    def __init__(self, k: float = 1.0, dim: Optional[int] = 2) -> None:
        super().__init__(_cuebm.AnalyticEnergy.harmonic(dim, k))


class RosenbrockEnergy(BaseEnergyFunction):
    """E(x) = sum_{i<D-1} (a - x_i)^2 + b (x_{i+1} - x_i^2)^2 (dim >= 2)."""

    def __init__(self, a: Any = 1.0, b: Any = 100.0, dim: Optional[int] = 2) -> None:
        super().__init__(_cuebm.AnalyticEnergy.rosenbrock(dim, a, b))


class AckleyEnergy(BaseEnergyFunction):
    """Ackley's function; its gradient at x = 0 is taken as 0."""

    def __init__(self, a: Any = 20.0, b: Any = 0.2, c: float = 2 * math.pi,
                 dim: Optional[int] = 2) -> None:
        super().__init__(_cuebm.AnalyticEnergy.ackley(dim, a, b, c))


class RastriginEnergy(BaseEnergyFunction):
    """E(x) = a D + sum_i (x_i^2 - a cos(2 pi x_i))."""

    def __init__(self, a: Any = 10.0, dim: Optional[int] = 2) -> None:
        super().__init__(_cuebm.AnalyticEnergy.rastrigin(dim, a))
