"""cuEBM: energy-based models on fused C++/CUDA kernels, with TorchEBM's names.

    import cuebm
    model = cuebm.MLPEnergy(input_dim=2, hidden_dims=(64, 64), activation="relu", seed=0)
    data = cuebm.GaussianMixtureDataset(n_samples=500, n_components=4, std=0.1, radius=1.5,
                                        seed=42).get_data()
    sampler = cuebm.LangevinDynamics(model, step_size=0.1, noise_scale=0.1)
    loss_fn = cuebm.ContrastiveDivergence(model, sampler, k_steps=10, lr=1e-3)
    loader = cuebm.DataLoader(data, batch_size=256, shuffle=True, drop_last=True)
    for epoch in range(200):
        for batch in loader.epoch(epoch):
            loss = loss_fn.step(batch)          # one CD-10 iteration with Adam and clipping
    samples = sampler.sample(dim=2, n_steps=500, n_samples=500)

Arrays go in as NumPy arrays or torch tensors (float32 read in place, float64 converted,
anything else a TypeError naming the dtype) and come back in the same kind. Errors from C++
arrive as cuebm.InvalidArgument (a ValueError), cuebm.NumericalError (a FloatingPointError),
cuebm.CudaError (a RuntimeError) and cuebm.IoError (an OSError), with the C++ message.
Score matching: cuebm.ScoreMatching, SlicedScoreMatching and DenosingScoreMatching (TorchEBM's
spelling; DenoisingScoreMatching too) give a loss and its parameter gradient; cuebm.Trainer
(ContrastiveDivergence is its CD case) trains with CD or any of them.
cuebm.torch puts a cuEBM MLP energy inside a PyTorch graph and samples PyTorch MLPs.
"""

from . import _cuebm
from ._cuebm import (
    CudaError,
    Error,
    InvalidArgument,
    IoError,
    NumericalError,
    Schedule,
    activation_names,
    built_with_cuda,
    cuda_device_count,
    cuda_unavailable_reason,
    dataset_names,
    mixture_entropy_2d,
    num_threads,
    set_num_threads,
)
from ._cuebm import __version__
from .data import (
    CheckerboardDataset,
    CircleDataset,
    DataLoader,
    EightGaussiansDataset,
    GaussianMixtureDataset,
    GridDataset,
    PinwheelDataset,
    SwissRollDataset,
    TwoMoonsDataset,
    eight_gaussians_centres,
    gaussian_mixture_centres,
    make_dataset,
)
from .energies import (
    AckleyEnergy,
    BaseEnergyFunction,
    DoubleWellEnergy,
    GaussianEnergy,
    HarmonicEnergy,
    MLPEnergy,
    RastriginEnergy,
    RosenbrockEnergy,
)
from .losses import (
    DenoisingScoreMatching,
    DenosingScoreMatching,
    ScoreMatching,
    SlicedScoreMatching,
)
from .io import load_checkpoint, load_safetensors, save_checkpoint, save_safetensors
from .metrics import grid_log_partition, grid_points, mmd2_rbf, mode_report, test_nll
from .samplers import (
    MALA,
    HamiltonianMonteCarlo,
    LangevinDynamics,
    ParallelTempering,
    annealed_importance_sampling,
    gaussian_initial_state,
)
from .training import ContrastiveDivergence, Trainer, train

__all__ = [
    "AckleyEnergy",
    "BaseEnergyFunction",
    "CheckerboardDataset",
    "CircleDataset",
    "ContrastiveDivergence",
    "CudaError",
    "DataLoader",
    "DenoisingScoreMatching",
    "DenosingScoreMatching",
    "DoubleWellEnergy",
    "EightGaussiansDataset",
    "Error",
    "GaussianEnergy",
    "GaussianMixtureDataset",
    "GridDataset",
    "HamiltonianMonteCarlo",
    "HarmonicEnergy",
    "InvalidArgument",
    "IoError",
    "LangevinDynamics",
    "MALA",
    "MLPEnergy",
    "NumericalError",
    "ParallelTempering",
    "PinwheelDataset",
    "RastriginEnergy",
    "RosenbrockEnergy",
    "Schedule",
    "ScoreMatching",
    "SlicedScoreMatching",
    "SwissRollDataset",
    "Trainer",
    "TwoMoonsDataset",
    "activation_names",
    "annealed_importance_sampling",
    "built_with_cuda",
    "cuda_device_count",
    "cuda_unavailable_reason",
    "dataset_names",
    "eight_gaussians_centres",
    "gaussian_initial_state",
    "gaussian_mixture_centres",
    "grid_log_partition",
    "grid_points",
    "load_checkpoint",
    "load_safetensors",
    "make_dataset",
    "mixture_entropy_2d",
    "mmd2_rbf",
    "mode_report",
    "num_threads",
    "save_checkpoint",
    "save_safetensors",
    "set_num_threads",
    "test_nll",
    "train",
]
