"""Training with cuEBM's C++ trainer (contrastive divergence or score matching) and whole
tutorial runs."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _cuebm
from ._arrays import Array, prepare
from .losses import SCORE_LOSSES
from .samplers import MALA, HamiltonianMonteCarlo, LangevinDynamics, ParallelTempering

_LOSS_NAMES = ("cd", "sm", "ssm", "dsm")


def _negatives_options(sampler):
    """(kind, step_size, noise_scale, extra CDTrainer keywords, clamp) of a sampler object."""
    s = sampler
    kind, extra = "langevin", {}
    step_size, noise_scale = getattr(s, "step_size", 1e-3), getattr(s, "noise_scale", 1.0)
    if isinstance(s, MALA):
        kind = "mala"
    elif isinstance(s, HamiltonianMonteCarlo):
        kind = "hmc"
        extra = dict(hmc_step_size=float(s.step_size), leapfrog=s.n_leapfrog_steps, mass=s.mass)
        step_size, noise_scale = 1e-3, 1.0
    elif isinstance(s, ParallelTempering):
        kind = "tempering"
        extra = dict(replicas=s.n_replicas, t_max=s.t_max, swap_every=s.swap_every)
        step_size, noise_scale = s.step_size, s.t_min ** 0.5
    elif not isinstance(s, LangevinDynamics):
        raise TypeError(f"unsupported sampler {type(s).__name__}")
    clamp = getattr(s, "clamp", None) or (None, None)
    return kind, step_size, noise_scale, extra, clamp


def _loss_options(loss, energy_function):
    """CDTrainer keywords for `loss`: a name (cd, sm, ssm, dsm) or a score-matching loss object."""
    if isinstance(loss, SCORE_LOSSES):
        if loss.energy_function is not energy_function:
            raise ValueError("the loss was made for another model than the one being trained")
        return loss.trainer_options()
    if isinstance(loss, str) and loss in _LOSS_NAMES:
        return dict(loss=loss)
    raise ValueError(f"loss must be one of {', '.join(_LOSS_NAMES)} or a ScoreMatching, "
                     f"SlicedScoreMatching or DenosingScoreMatching object, got {loss!r}")


class Trainer:
    """cuEBM's trainer of an MLPEnergy, with Adam and gradient-norm clipping: step(batch) is one
    whole iteration of TorchEBM's tutorial loop (loss_fn(data), loss.backward(),
    clip_grad_norm_, optimizer.step()) in one C++ call, and returns the loss before the update.

    loss: "cd" (contrastive divergence, the default), "sm", "ssm", "dsm" with the trainer's
    default settings, or a ScoreMatching / SlicedScoreMatching / DenosingScoreMatching object
    whose settings (hessian_method, n_projections, projection_type, noise_scale,
    denoising_sign, regularization_strength) are used. A score-matching loss is evaluated on
    the batch alone (no sampler; the trained model means exp(-E)); its random draws are keyed
    by the trainer's seed and iteration, as in `cuebm train`.

    CD: the sampler gives the negatives' chain: LangevinDynamics (TorchEBM's, the default),
    MALA, HamiltonianMonteCarlo or ParallelTempering; its step_size and noise_scale (sigma; the
    chains target exp(-E / sigma^2)) are used. Noise is keyed by (seed, row, iteration * k), so
    a run is reproducible. max_batch: the largest batch (default: the first batch's size).
    """

    def __init__(self, energy_function: Any, sampler: Any = None, k_steps: int = 10,
                 persistent: bool = False, buffer_size: int = 10000, init_steps: int = 100,
                 new_sample_ratio: float = 0.05, energy_reg_weight: float = 0.001, *,
                 loss: str = "cd", lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, max_grad_norm: float = 1.0,
                 seed: Optional[int] = 0, max_batch: Optional[int] = None, per_chain: bool = False,
                 reinit_from_noise: bool = False, max_nonfinite_steps: int = 3,
                 device: str = "cpu") -> None:
        from .energies import MLPEnergy

        if not isinstance(energy_function, MLPEnergy):
            raise TypeError(f"{type(self).__name__} trains an MLPEnergy, got "
                            f"{type(energy_function).__name__}")
        loss_options = _loss_options(loss, energy_function)
        if loss_options["loss"] != "cd" and sampler is not None:
            raise ValueError(f"loss {loss_options['loss']} uses no sampler (score matching has "
                             "no negatives); pass sampler=None")
        self.energy_function = energy_function
        self.loss = loss
        self.sampler = sampler if sampler is not None else LangevinDynamics(energy_function)
        kind, step_size, noise_scale, extra, clamp = _negatives_options(self.sampler)
        self._trainer = _cuebm.CDTrainer(
            energy_function._impl, k_steps=k_steps, persistent=persistent,
            buffer_size=buffer_size, init_steps=init_steps, new_sample_ratio=new_sample_ratio,
            energy_reg_weight=energy_reg_weight, per_chain=per_chain,
            reinit_from_noise=reinit_from_noise, step_size=step_size, noise_scale=noise_scale,
            clamp_min=clamp[0], clamp_max=clamp[1], sampler=kind, lr=lr, beta1=betas[0],
            beta2=betas[1], eps=eps, weight_decay=weight_decay, max_grad_norm=max_grad_norm,
            seed=seed, max_nonfinite_steps=max_nonfinite_steps, max_batch=max_batch,
            device=device, **extra, **loss_options)

    def step(self, batch: Array) -> float:
        """One iteration on an (n, dim) batch; returns the loss (a float; NaN when the step was
        skipped for a non-finite loss)."""
        return self._trainer.step(prepare(batch, "batch")[0])

    def fit(self, data: Array, epochs: int, batch_size: int, shuffle: bool = True,
            drop_last: bool = True, seed: Optional[int] = 0, first_epoch: int = 0) -> List[float]:
        """Epochs of steps over data (cuEBM's DataLoader, epoch e shuffled by (seed, e));
        returns each epoch's mean loss. Ctrl-C stops after the current step."""
        return self._trainer.fit(prepare(data, "data")[0], epochs, batch_size, shuffle, drop_last, seed,
                                 first_epoch)

    @property
    def last_stats(self) -> Dict[str, Any]:
        """loss, pos_energy, neg_energy, grad_norm, skipped, acceptance of the last step."""
        return self._trainer.last_stats

    @property
    def last_negatives(self) -> Any:
        """The negatives of the last step, (n, dim) (a copy); None for score matching."""
        return self._trainer.last_negatives()

    @property
    def replay_buffer(self) -> Any:
        """The replay buffer of persistent CD (a copy; empty until used)."""
        return self._trainer.replay_buffer()

    @property
    def iteration(self) -> int:
        """Steps taken (the iteration whose draws the next step uses)."""
        return self._trainer.iteration

    def optimizer_state(self) -> Dict[str, Any]:
        """Adam's steps and moments m, v (copies)."""
        return self._trainer.optimizer_state()

    def sync(self) -> None:
        """Brings the model's parameters up to date on the host (needed on a CUDA device
        before reading the model)."""
        self._trainer.sync_to_host()


class ContrastiveDivergence(Trainer):
    """CD-k (or persistent CD with TorchEBM's replay buffer) on an MLPEnergy: cuebm.Trainer
    with loss="cd", under TorchEBM's name (loss= still selects another loss)."""


def train(log: Callable[..., Any] = print, **config: Any) -> Any:
    """A whole training run of the C++ trainer (`cuebm train`; the Gaussian-mixture tutorial by
    default): dataset, dataset_params, data_seed, input_dim, hidden, activation, epochs,
    batch_size, step_size, noise_scale, k_steps, persistent, buffer_size, lr, max_grad_norm,
    seed, output_dir ("" writes no figures), checkpoint_path, checkpoint_every, resume_from,
    model_path, report_path, device;
    the negatives' sampler (CD): sampler ("langevin", "mala", "hmc", "tempering"),
    hmc_step_size, leapfrog, mass, replicas, t_max, swap_every;
    the loss: loss ("cd", "sm", "ssm", "dsm"), hessian_method ("exact", "torchebm_approx"),
    n_projections, projection_type, dsm_noise_scale, denoising_sign, regularization_strength.
    Returns the report dict (epoch_loss, epoch_acceptance, final_parameters, final_samples,
    metrics, temperature and its source, mode coverage). Ctrl-C stops it after the current
    iteration."""
    return _cuebm.run_training(log=log, **config)
