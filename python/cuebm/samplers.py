"""Samplers with TorchEBM's names: LangevinDynamics, HamiltonianMonteCarlo, and cuEBM's MALA,
ParallelTempering and annealed importance sampling.

Random numbers come from Philox keyed by (seed, chain, step), not from torch's generator: the
same settings give statistically equivalent results to TorchEBM, not the same bits. A sampler
keeps a step counter, so consecutive sample() calls draw fresh noise (as TorchEBM's do) while a
run stays reproducible; pass seed= / step_offset= to a call to choose its noise explicitly.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import _cuebm
from ._arrays import prepare, wrap


def gaussian_initial_state(n: int, dim: Optional[int], seed: Optional[int] = 0,
                           first_chain: int = 0) -> np.ndarray:
    """N(0, I) rows keyed by (seed, chain): the samplers' default start."""
    return _cuebm.gaussian_initial_state(n, dim, seed, first_chain)


class _Sampler:
    def __init__(self, energy_function: Any, seed: Optional[int], device: str) -> None:
        self.energy_function = energy_function
        self.seed = int(seed)
        self.device = str(device)
        self._steps_done = 0

    def _start(self, x, dim, n_samples):
        if x is None:
            return None, None, int(n_samples)
        a, like = prepare(x)
        return a, like, 0

    def _keys(self, seed, step_offset, n_steps):
        """(seed, step_offset) of a call; without explicit ones the call continues the
        sampler's noise stream."""
        if seed is None and step_offset is None:
            offset = self._steps_done
            self._steps_done += n_steps
            return self.seed, offset
        return (self.seed if seed is None else int(seed)), int(step_offset or 0)


class LangevinDynamics(_Sampler):
    """Unadjusted Langevin: x <- x - eta dE/dx + sqrt(2 eta) sigma eps, targeting
    exp(-E / sigma^2) (temperature sigma^2; TorchEBM's docstring says sigma^2 / (2 eta)).

    step_size (eta) and noise_scale (sigma): floats or cuebm.Schedule. Schedules restart at
    every call and step t uses the value after t steps (the newest TorchEBM convention).
    """

    def __init__(self, energy_function: Any, step_size: Any = 1e-3, noise_scale: Any = 1.0, *,
                 seed: Optional[int] = 0, clamp: Optional[Tuple[float, float]] = None,
                 device: str = "cpu") -> None:
        super().__init__(energy_function, seed, device)
        self.step_size = step_size
        self.noise_scale = noise_scale
        self.clamp = clamp
        self.last_temperature = None

    def sample(self, x: Any = None, dim: Optional[int] = None, n_steps: int = 100,
               n_samples: int = 1, thin: int = 1, return_trajectory: bool = False,
               return_diagnostics: bool = False, *, seed: Optional[int] = None,
               step_offset: Optional[int] = None, first_chain: int = 0,
               chunk_steps: int = 0) -> Any:
        """Runs the chains from x ((n, dim), NumPy or a CPU tensor) or from N(0, I)
        (n_samples rows of dimension dim, default the energy's).

        Returns the final samples (n, dim); with return_trajectory the states after steps
        thin, 2 thin, ... as (n, n_steps / thin, dim) (TorchEBM's layout; a view); with
        return_diagnostics a pair (samples or trajectory, diagnostics) where diagnostics is a
        dict of per-step "mean" and "variance" across chains (n_steps, dim; unbiased) and
        "mean_energy" (n_steps,). The result has x's kind (a tensor for a tensor). Ctrl-C
        stops a long run between chunks of steps (KeyboardInterrupt)."""
        energy = self.energy_function
        if dim is not None and dim != energy.dim:
            raise ValueError(f"dim={dim} but the energy's dimension is {energy.dim}")
        a, like, n = self._start(x, dim, n_samples)
        seed, offset = self._keys(seed, step_offset, n_steps)
        clamp_min, clamp_max = self.clamp if self.clamp is not None else (None, None)
        r = _cuebm.langevin_sample(
            energy._impl, a, n, self.step_size, self.noise_scale, n_steps, seed, offset,
            first_chain, clamp_min, clamp_max, thin if return_trajectory else 0,
            return_diagnostics, self.device, chunk_steps)
        self.last_temperature = r["temperature"]
        out = wrap(r["samples"], like)
        if return_trajectory:
            out = wrap(r["trajectory"], like).transpose(1, 0, 2) if like is None else \
                wrap(r["trajectory"], like).permute(1, 0, 2)
        if return_diagnostics:
            diag = {k: wrap(r[k], like) for k in ("mean", "variance", "mean_energy")}
            diag["temperature"] = r["temperature"]
            return out, diag
        return out


class _McmcSampler(_Sampler):
    def _finish(self, r, like, return_diagnostics):
        self.last_info = {k: v for k, v in r.items() if k != "samples"}
        out = wrap(r["samples"], like)
        if return_diagnostics:
            return out, self.last_info
        return out


class MALA(_McmcSampler):
    """Metropolis-adjusted Langevin: Langevin's proposal accepted with the Metropolis-Hastings
    ratio for exp(-E / sigma^2), exact at any step size. After sample(), last_info holds the
    per-chain acceptance, mean_acceptance, energy and temperature."""

    def __init__(self, energy_function: Any, step_size: Any = 1e-2, noise_scale: Any = 1.0, *,
                 seed: Optional[int] = 0, device: str = "cpu") -> None:
        super().__init__(energy_function, seed, device)
        self.step_size = step_size
        self.noise_scale = noise_scale

    def sample(self, x: Any = None, dim: Optional[int] = None, n_steps: int = 100,
               n_samples: int = 1, return_diagnostics: bool = False, *, seed: Optional[int] = None,
               step_offset: Optional[int] = None, first_chain: int = 0,
               chunk_steps: int = 0) -> Any:
        """Final samples (n, dim); with return_diagnostics (samples, info) where info also has
        the energy trace (n_steps, n) and its split R-hat and bulk ESS. Ctrl-C stops a long run
        between chunks of chunk_steps steps (0: about 50 ms of work each; KeyboardInterrupt);
        the chunks give the same bits as one run."""
        a, like, n = self._start(x, dim, n_samples)
        seed, offset = self._keys(seed, step_offset, n_steps)
        r = _cuebm.mala_sample(self.energy_function._impl, a, n, self.step_size,
                               self.noise_scale, n_steps, seed, offset, first_chain,
                               return_diagnostics, self.device, chunk_steps)
        return self._finish(r, like, return_diagnostics)


class HamiltonianMonteCarlo(_McmcSampler):
    """TorchEBM's HMC for exp(-E): momentum N(0, M) (mass None: identity, a float: scalar, or
    dim values: diagonal), n_leapfrog_steps leapfrog steps of step_size, per-chain accept."""

    def __init__(self, energy_function: Any, step_size: Any = 1e-3, n_leapfrog_steps: int = 10,
                 mass: Union[None, float, Sequence[float]] = None, *, seed: Optional[int] = 0,
                 device: str = "cpu") -> None:
        super().__init__(energy_function, seed, device)
        self.step_size = step_size
        self.n_leapfrog_steps = n_leapfrog_steps
        if mass is None:
            self.mass = []
        elif isinstance(mass, (int, float)):
            self.mass = [float(mass)]
        else:
            self.mass = [float(m) for m in mass]

    def sample(self, x: Any = None, dim: Optional[int] = None, n_steps: int = 100,
               n_samples: int = 1, return_trajectory: bool = False,
               return_diagnostics: bool = False, *, seed: Optional[int] = None,
               step_offset: Optional[int] = None, first_chain: int = 0,
               chunk_steps: int = 0) -> Any:
        """As MALA.sample (chunk_steps too). Trajectories are not kept by cuEBM's HMC
        (NotImplementedError)."""
        if return_trajectory:
            raise NotImplementedError("cuEBM's HMC does not keep trajectories; sample in pieces "
                                      "with step_offset to record states")
        a, like, n = self._start(x, dim, n_samples)
        seed, offset = self._keys(seed, step_offset, n_steps)
        r = _cuebm.hmc_sample(self.energy_function._impl, a, n, self.step_size,
                              self.n_leapfrog_steps, self.mass, n_steps, seed, offset,
                              first_chain, return_diagnostics, self.device, chunk_steps)
        return self._finish(r, like, return_diagnostics)


class ParallelTempering(_McmcSampler):
    """Replica-exchange MALA: n_replicas replicas per chain on a ladder (temperatures, or
    geometric from t_min, the target, to t_max), adjacent swaps every swap_every steps.
    Returns the t_min replicas; last_info has the ladder and swap/move acceptance."""

    def __init__(self, energy_function: Any, temperatures: Optional[Sequence[float]] = None,
                 n_replicas: int = 8, t_min: float = 1.0, t_max: float = 10.0,
                 step_size: Any = 0.01, swap_every: int = 1, *, seed: Optional[int] = 0,
                 device: str = "cpu") -> None:
        super().__init__(energy_function, seed, device)
        self.temperatures = list(temperatures or [])
        self.n_replicas = n_replicas
        self.t_min, self.t_max = t_min, t_max
        self.step_size = step_size
        self.swap_every = swap_every

    def sample(self, x: Any = None, dim: Optional[int] = None, n_steps: int = 1000,
               n_samples: int = 1, return_diagnostics: bool = False, *, seed: Optional[int] = None,
               first_chain: int = 0) -> Any:
        """The t_min replicas after n_steps steps (n, dim), from x or from N(0, I); with
        return_diagnostics (samples, info) where info has the ladder, the swap and move
        acceptance rates and the energies. One uninterrupted call (Ctrl-C is seen at its end:
        the C++ run cannot be continued in pieces)."""
        a, like, n = self._start(x, dim, n_samples)
        seed = self.seed if seed is None else seed
        r = _cuebm.parallel_tempering(self.energy_function._impl, a, n, self.temperatures,
                                      self.n_replicas, self.t_min, self.t_max, self.step_size,
                                      n_steps, self.swap_every, seed, first_chain, self.device)
        return self._finish(r, like, return_diagnostics)


def annealed_importance_sampling(energy: Any, n_chains: int = 1000, n_temperatures: int = 1000,
                                 mcmc_steps: int = 1, step_size: Any = 0.05,
                                 temperature: float = 1.0, seed: Optional[int] = 0,
                                 device: str = "cpu") -> Dict[str, Any]:
    """log Z of exp(-E / temperature) by AIS from N(0, I) with MALA transitions: a dict with
    log_z, std_error, ess, acceptance and log_weights."""
    return _cuebm.ais_log_partition(energy._impl, n_chains, n_temperatures, mcmc_steps,
                                    step_size, temperature, seed, device)
