"""cuEBM inside PyTorch.

- MLPEnergyFunction: an autograd Function whose forward is E(x) from cuEBM's kernels and whose
  backward gives dE/dx and the parameter gradient (Mlp::gradient and Mlp::parameter_gradient,
  with the upstream gradient as the coefficients). mlp_energy(x, module) applies it to any
  PyTorch MLP that MLPEnergy.from_torch accepts, so gradients reach the module's own
  nn.Parameters and PyTorch's optimiser trains them.
- MLPEnergy: TorchEBM's tutorial MLPEnergy (an nn.Module with `network = nn.Sequential(...)`)
  whose forward runs on cuEBM.
- LangevinDynamics: TorchEBM's sampler API for a PyTorch MLP: every sample() call takes the
  module's current weights, runs cuEBM's Langevin chains and returns a tensor. On a CUDA tensor
  (in a build with the CUDA backend) the chains run in place on the GPU on torch's current
  stream (the stream API); otherwise on the CPU.
- ScoreMatching, SlicedScoreMatching, DenosingScoreMatching (and DenoisingScoreMatching): the
  score-matching losses of a PyTorch MLP; loss.backward() gives the module's parameter gradient
  from cuEBM's fused kernel (ScoreLossFunction), so PyTorch's optimiser trains it.

The kernels compute in float32: float64 inputs are rounded to float32 and the results cast back,
so the Function is exact to float32 rounding only (gradcheck passes at float32 tolerances).
CUDA tensors given to the Function are copied to the CPU (the stream API has no parameter
gradient). Double backward (create_graph=True through the Function) is not supported.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from . import _cuebm
from .energies import _sequential_of, _torch_mlp_layout
from .samplers import LangevinDynamics as _CpuLangevin

_ACTIVATION_MODULES = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}


class TorchMLPEnergy(nn.Module):
    """TorchEBM's tutorial MLPEnergy in plain PyTorch: `network` = Linear(D, h1), act, ...,
    Linear(hL, 1); forward(x) = network(x).squeeze(-1). MLPEnergy.to_torch() returns one."""

    def __init__(self, input_dim: int = 2, hidden_dims: Sequence[int] = (64, 64),
                 activation: Optional[str] = "relu") -> None:
        super().__init__()
        layers, width = [], input_dim
        for h in hidden_dims:
            layers += [nn.Linear(width, h), _ACTIVATION_MODULES[activation]()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.network = nn.Sequential(*layers)

    def forward(self, x: Any) -> Any:
        return self.network(x).squeeze(-1)


def _cpp_model(module):
    """The C++ Mlp mirroring `module`'s layout, created once and kept on the module."""
    widths, activation = _torch_mlp_layout(module)
    cached = module.__dict__.get("_cuebm_mlp")
    if cached is None or list(cached.widths) != widths or cached.activation != activation:
        cached = _cuebm.Mlp(widths[0], widths[1:-1], activation, 0)
        module.__dict__["_cuebm_mlp"] = cached
    return cached


def flat_parameters(module: Any) -> Any:
    """The module's parameters flattened in state_dict order (differentiable: torch.cat)."""
    return torch.cat([p.reshape(-1) for p in _sequential_of(module).parameters()])


class MLPEnergyFunction(torch.autograd.Function):
    """E = MLPEnergyFunction.apply(x, params, mlp): x (n, D), params the flat parameter vector
    in state_dict order, mlp a cuebm._cuebm.Mlp of the same layout. Returns E (n,)."""

    @staticmethod
    def forward(ctx: Any, x: Any, params: Any, mlp: Any) -> Any:
        x32 = x.detach().to("cpu", torch.float32).contiguous()
        p32 = params.detach().to("cpu", torch.float32).contiguous()
        mlp.set_parameters(p32)
        e = torch.from_numpy(mlp.energy(x32))
        ctx.mlp, ctx.x32, ctx.p32 = mlp, x32, p32
        ctx.x_meta = (x.dtype, x.device)
        ctx.p_meta = (params.dtype, params.device)
        return e.to(x.device, x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_e: Any) -> Any:
        mlp = ctx.mlp
        mlp.set_parameters(ctx.p32)  # another forward may have changed the C++ weights
        g = grad_e.detach().to("cpu", torch.float32).contiguous()
        grad_x = grad_p = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.from_numpy(mlp.gradient(ctx.x32)) * g[:, None]
            grad_x = grad_x.to(ctx.x_meta[1], ctx.x_meta[0])
        if ctx.needs_input_grad[1]:
            grad_p = torch.from_numpy(mlp.parameter_gradient(ctx.x32, g))
            grad_p = grad_p.to(ctx.p_meta[1], ctx.p_meta[0])
        return grad_x, grad_p, None


def mlp_energy(x: Any, module: Any) -> Any:
    """E(x) of a PyTorch MLP (nn.Sequential of Linear and one of the six activations, or a
    module holding one as `.network`) computed by cuEBM, differentiable in x and in the
    module's parameters."""
    return MLPEnergyFunction.apply(x, flat_parameters(module), _cpp_model(module))


class MLPEnergy(TorchMLPEnergy):
    """TorchMLPEnergy whose forward runs on cuEBM's kernels (mlp_energy): same parameters,
    state_dict and results to float32 rounding, trained by any PyTorch optimiser."""

    def forward(self, x: Any) -> Any:
        return mlp_energy(x, self)


class LangevinDynamics:
    """TorchEBM's LangevinDynamics for a PyTorch MLP energy, sampled by cuEBM: each sample()
    copies the module's current weights into cuEBM and runs the chains there. Noise from
    Philox keyed by (seed, chain, step); consecutive calls continue the stream (as
    cuebm.LangevinDynamics)."""

    def __init__(self, energy_function: Any, step_size: Any = 1e-3, noise_scale: Any = 1.0, *,
                 seed: Optional[int] = 0, clamp: Optional[Tuple[float, float]] = None) -> None:
        self.energy_function = energy_function
        self.step_size = step_size
        self.noise_scale = noise_scale
        self.seed = seed
        self.clamp = clamp
        self._steps_done = 0

    def _sync_weights(self):
        mlp = _cpp_model(self.energy_function)
        with torch.no_grad():
            mlp.set_parameters(flat_parameters(self.energy_function).to("cpu", torch.float32))
        return mlp

    @torch.no_grad()
    def sample(self, x: Any = None, dim: Optional[int] = None, n_steps: int = 100,
               n_samples: int = 1, thin: int = 1, return_trajectory: bool = False,
               return_diagnostics: bool = False, *, seed: Optional[int] = None,
               step_offset: Optional[int] = None) -> Any:
        """As cuebm.LangevinDynamics.sample, with tensors: x (n, D) or None (n_samples rows
        from N(0, I)); returns a tensor on x's device."""
        if x is not None and x.is_cuda and _cuebm.built_with_cuda():
            if return_trajectory or return_diagnostics:
                raise NotImplementedError("trajectories and diagnostics are CPU-only")
            return self._sample_cuda(x, n_steps, seed, step_offset)
        from .energies import MLPEnergy as CpuMlp

        energy = CpuMlp(_impl=self._sync_weights())
        sampler = _CpuLangevin(energy, self.step_size, self.noise_scale, seed=self.seed,
                               clamp=self.clamp)
        sampler._steps_done = self._steps_done
        device = x.device if x is not None else torch.device("cpu")
        start = x.detach().cpu() if x is not None else None
        out = sampler.sample(start, dim, n_steps, n_samples, thin, return_trajectory,
                             return_diagnostics, seed=seed, step_offset=step_offset)
        self._steps_done = sampler._steps_done
        if x is None:  # no input tensor to follow: tensors out all the same
            out = (torch.from_numpy(out[0]), out[1]) if return_diagnostics else \
                torch.from_numpy(out)
        if return_diagnostics:
            return out[0].to(device), out[1]
        return out.to(device)

    def _sample_cuda(self, x, n_steps, seed, step_offset):
        if seed is None and step_offset is None:
            seed, step_offset = self.seed, self._steps_done
            self._steps_done += n_steps
        widths, activation = _torch_mlp_layout(self.energy_function)
        params = flat_parameters(self.energy_function).to(torch.float32).contiguous()
        out = x.detach().to(torch.float32).clone().contiguous()
        ws = _cuebm.cuda_langevin_chain_workspace_size(widths, activation, out.shape[0], n_steps,
                                                       out.shape[1])
        workspace = torch.empty(max(ws, 1), dtype=torch.uint8, device=x.device)
        clamp_min, clamp_max = self.clamp if self.clamp is not None else (None, None)
        _cuebm.cuda_langevin_chain(widths, activation, params, out, workspace,
                                   torch.cuda.current_stream(x.device).cuda_stream,
                                   self.step_size, self.noise_scale, n_steps, seed or 0,
                                   step_offset or 0, 0, clamp_min, clamp_max)
        return out


class ScoreLossFunction(torch.autograd.Function):
    """loss = ScoreLossFunction.apply(params, x, impl, iteration): a score-matching loss
    (impl, a cuebm._cuebm.ScoreLoss) of the flat parameters `params` at the rows x, with the
    draws of `iteration`; backward gives the parameter gradient from the same C++ call. x gets
    no gradient (score matching differentiates in x inside the loss already)."""

    @staticmethod
    def forward(ctx: Any, params: Any, x: Any, impl: Any, iteration: Optional[int]) -> Any:
        p32 = params.detach().to("cpu", torch.float32).contiguous()
        x32 = x.detach().to("cpu", torch.float32).contiguous()
        loss, grad = impl.evaluate_parameters(p32, x32, iteration, gradient=True)
        ctx.grad = torch.from_numpy(grad).to(params.device, params.dtype)
        return torch.tensor(loss, dtype=params.dtype, device=params.device)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_loss: Any) -> Any:
        return ctx.grad * grad_loss, None, None, None


class _ScoreLoss:
    """TorchEBM's loss API for a PyTorch MLP: loss = loss_fn(x); loss.backward() fills the
    module's .grad from cuEBM's fused loss-and-gradient kernel; the optimiser steps them. Draws
    keyed by (seed, iteration, row); a call without iteration= uses and advances
    self.iteration."""

    kind = ""

    def __init__(self, energy_function: Any, regularization_strength: float = 0.0, *,
                 seed: Optional[int] = 0, **settings: Any) -> None:
        self.energy_function = energy_function
        self.regularization_strength = float(regularization_strength)
        self.seed = int(seed)
        self.iteration = 0
        self._settings = settings
        self._impl, self._shape = None, None

    def _loss(self):
        shape = _torch_mlp_layout(self.energy_function)
        if self._impl is None or shape != self._shape:
            self._impl = _cuebm.ScoreLoss(_cpp_model(self.energy_function), kind=self.kind,
                                          regularization_strength=self.regularization_strength,
                                          seed=self.seed, **self._settings)
            self._shape = shape
        return self._impl

    def __call__(self, x, *, iteration=None):
        return self.forward(x, iteration=iteration)

    def forward(self, x: Any, *, iteration: Optional[int] = None) -> Any:
        """The loss (a 0-d tensor on the parameters' device) at the (n, dim) rows x."""
        if iteration is None:
            iteration, self.iteration = self.iteration, self.iteration + 1
        return ScoreLossFunction.apply(flat_parameters(self.energy_function), x, self._loss(),
                                       int(iteration))


class ScoreMatching(_ScoreLoss):
    """cuebm.ScoreMatching for a PyTorch MLP (hessian_method "exact" or "approx")."""

    kind = "sm"

    def __init__(self, energy_function: Any, hessian_method: str = "exact",
                 regularization_strength: float = 0.0, *, seed: Optional[int] = 0) -> None:
        from .losses import _HESSIAN_METHODS

        super().__init__(energy_function, regularization_strength, seed=seed,
                         hessian_method=_HESSIAN_METHODS.get(hessian_method, hessian_method))


class SlicedScoreMatching(_ScoreLoss):
    """cuebm.SlicedScoreMatching for a PyTorch MLP."""

    kind = "ssm"

    def __init__(self, energy_function: Any, n_projections: int = 5,
                 projection_type: str = "rademacher", regularization_strength: float = 0.0, *,
                 seed: Optional[int] = 0) -> None:
        super().__init__(energy_function, regularization_strength, seed=seed,
                         n_projections=int(n_projections), projection_type=projection_type)


class DenosingScoreMatching(_ScoreLoss):
    """cuebm.DenosingScoreMatching (TorchEBM's spelling) for a PyTorch MLP."""

    kind = "dsm"

    def __init__(self, energy_function: Any, noise_scale: Any = 0.01,
                 regularization_strength: float = 0.0, *, denoising_sign: str = "correct",
                 seed: Optional[int] = 0) -> None:
        super().__init__(energy_function, regularization_strength, seed=seed,
                         noise_scale=float(noise_scale), denoising_sign=denoising_sign)


DenoisingScoreMatching = DenosingScoreMatching
