"""Score-matching losses of an MLPEnergy with TorchEBM's names (cuEBM's ScoreLoss).

    loss_fn = cuebm.SlicedScoreMatching(model, n_projections=5, projection_type="rademacher")
    loss = loss_fn(x)                            # the batch mean, a float
    loss, grad = loss_fn.loss_and_gradient(x)    # and d loss / d parameters (state_dict order)

ScoreMatching (hessian_method "exact", or TorchEBM's "approx"), SlicedScoreMatching and
DenosingScoreMatching (TorchEBM's spelling; DenoisingScoreMatching is the same class). The
formulas are those of include/cuebm/training/score_matching.hpp; with ReLU or LeakyReLU the exact
Hessian trace is 0, so use a smooth activation with score matching.

Random draws (projections, denoising noise, the approx estimate's delta) are Philox keyed by
(seed, iteration, row): each call without iteration= uses `self.iteration` and then advances it
(fresh draws per call, as TorchEBM's), and iteration=k picks the draws of training iteration k.
To train with one of these losses, give it to cuebm.Trainer(model, loss=...) (C++ Adam steps),
or use cuebm.torch's losses inside a PyTorch loop.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from . import _cuebm
from ._arrays import prepare, wrap

# TorchEBM's hessian_method names -> cuEBM's.
_HESSIAN_METHODS = {"exact": "exact", "approx": "torchebm_approx",
                    "torchebm_approx": "torchebm_approx"}


def _check_model(energy_function, what):
    from .energies import MLPEnergy

    if not isinstance(energy_function, MLPEnergy):
        raise TypeError(f"{what} needs an MLPEnergy, got {type(energy_function).__name__}")


class _ScoreLoss:
    """The shared part: settings, the C++ loss, iteration bookkeeping."""

    kind = ""

    def __init__(self, energy_function: Any, *, regularization_strength: float = 0.0,
                 seed: Optional[int] = 0, device: str = "cpu", **settings: Any) -> None:
        _check_model(energy_function, type(self).__name__)
        self.energy_function = energy_function
        self.regularization_strength = float(regularization_strength)
        self.seed = int(seed)
        self.iteration = 0
        self._settings = settings
        self._impl = _cuebm.ScoreLoss(energy_function._impl, kind=self.kind,
                                      regularization_strength=self.regularization_strength,
                                      seed=self.seed, device=device, **settings)

    def _next_iteration(self, iteration):
        if iteration is not None:
            return int(iteration)
        self.iteration += 1
        return self.iteration - 1

    def __call__(self, x, *, iteration=None):
        return self.forward(x, iteration=iteration)

    def forward(self, x: Any, *, iteration: Optional[int] = None) -> Any:
        """The loss (the batch mean, a float) at the (n, dim) rows x."""
        a, _ = prepare(x)
        return self._impl.evaluate(self.energy_function._impl, a, self._next_iteration(iteration))

    def loss_and_gradient(self, x: Any, *, iteration: Optional[int] = None) -> Tuple[float, Any]:
        """(loss, gradient): the gradient of the loss in the model's parameters, flat in
        state_dict order (MLPEnergy.parameter_info() names the slices), float32, of x's kind."""
        a, like = prepare(x)
        loss, grad = self._impl.evaluate(self.energy_function._impl, a,
                                         self._next_iteration(iteration), gradient=True)
        return loss, wrap(grad, like)

    def trainer_options(self) -> Any:
        """The cuebm.Trainer keywords that select this loss and its settings."""
        return dict(loss=self.kind, regularization_strength=self.regularization_strength,
                    **{_TRAINER_NAMES.get(k, k): v for k, v in self._settings.items()})

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in self._settings.items())
        return (f"{type(self).__name__}({self.energy_function!r}, {settings}, "
                f"regularization_strength={self.regularization_strength})")


# ScoreLoss keyword -> the trainer's keyword where they differ.
_TRAINER_NAMES = {"noise_scale": "dsm_noise_scale"}


class ScoreMatching(_ScoreLoss):
    """Hyvarinen's score matching, mean(0.5 |dE/dx|^2 - tr H) (+ lambda mean |dE/dx|^2).
    hessian_method: "exact" (forward-mode second derivatives) or "approx" (TorchEBM's
    finite-difference estimate, which is off by the factor dim; for reproducing TorchEBM only)."""

    kind = "sm"

    def __init__(self, energy_function: Any, hessian_method: str = "exact",
                 regularization_strength: float = 0.0, *, seed: Optional[int] = 0,
                 device: str = "cpu") -> None:
        if hessian_method not in _HESSIAN_METHODS:
            raise ValueError(f"hessian_method must be one of {sorted(_HESSIAN_METHODS)}, "
                             f"got {hessian_method!r}")
        super().__init__(energy_function, regularization_strength=regularization_strength,
                         seed=seed, device=device,
                         hessian_method=_HESSIAN_METHODS[hessian_method])


class SlicedScoreMatching(_ScoreLoss):
    """Sliced score matching: mean over rows and n_projections directions v of
    -v^T H v + 0.5 (dE/dx . v)^2; projection_type "rademacher", "sphere" or "gaussian"."""

    kind = "ssm"

    def __init__(self, energy_function: Any, n_projections: int = 5,
                 projection_type: str = "rademacher", regularization_strength: float = 0.0, *,
                 seed: Optional[int] = 0, device: str = "cpu") -> None:
        super().__init__(energy_function, regularization_strength=regularization_strength,
                         seed=seed, device=device, n_projections=int(n_projections),
                         projection_type=projection_type)


class DenosingScoreMatching(_ScoreLoss):
    """Denoising score matching at noise scale sigma: x~ = x + n, n ~ N(0, sigma^2 I), loss
    mean 0.5 |-dE/dx(x~) + n / sigma^2|^2 (denoising_sign "correct", the default) or TorchEBM's
    mean 0.5 |dE/dx(x~) + n / sigma^2|^2 (denoising_sign "torchebm", which trains towards the
    inverted density; for reproducing TorchEBM only). The name is TorchEBM's spelling;
    DenoisingScoreMatching is the same class."""

    kind = "dsm"

    def __init__(self, energy_function: Any, noise_scale: Any = 0.01,
                 regularization_strength: float = 0.0, *, denoising_sign: str = "correct",
                 seed: Optional[int] = 0, device: str = "cpu") -> None:
        super().__init__(energy_function, regularization_strength=regularization_strength,
                         seed=seed, device=device, noise_scale=float(noise_scale),
                         denoising_sign=denoising_sign)


DenoisingScoreMatching = DenosingScoreMatching

SCORE_LOSSES = (ScoreMatching, SlicedScoreMatching, DenosingScoreMatching)
