#!/usr/bin/python3
"""TorchEBM's Gaussian-mixture tutorial script, as TorchEBM 0.3.17 runs it.

The peer of examples/python/gaussian_mixture.py for bench/tutorial_script.py: the same
hyperparameters, dataset, figures (at epoch 1, every VISUALIZE_EVERY epochs and at the end) and
final samples, with TorchEBM's classes and its four-line inner loop (zero_grad, loss_fn(batch),
backward, clip_grad_norm_ + optimizer.step). The figure function is the cuEBM example's, line
for line, with TorchEBM's energy and sampler calls.

Usage: bench/torchebm_tutorial_script.py [--epochs 200] [--output DIR] [--no-figures]
                                          [--threads N]
"""

import argparse
import os
import sys
import time

import numpy as np

from peer_common import add_threads_argument, import_torchebm, set_torch_threads

N_SAMPLES = 500
INPUT_DIM = 2
HIDDEN_DIM = 64
BATCH_SIZE = 256
EPOCHS = 200
LEARNING_RATE = 1e-3
SAMPLER_STEP_SIZE = 0.1
SAMPLER_NOISE_SCALE = 0.1
CD_K = 10
USE_PCD = False
VISUALIZE_EVERY = 20
SEED = 42


def plot_energy_and_samples(plt, torch, energy_model, real_samples, sampler, epoch, path,
                            n_steps, grid_size=100, plot_range=2.5):
    x = np.linspace(-plot_range, plot_range, grid_size)
    y = np.linspace(-plot_range, plot_range, grid_size)
    xx, yy = np.meshgrid(x, y)
    grid = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32))
    with torch.no_grad():
        energy = energy_model(grid).numpy().reshape(grid_size, grid_size)
    density = np.exp(-(energy - energy.min()))
    samples = sampler.sample(dim=INPUT_DIM, n_steps=n_steps, n_samples=500).detach().numpy()
    draw_start = time.perf_counter()
    plt.figure(figsize=(8, 6))
    plt.contourf(xx, yy, density, levels=50, cmap="viridis")
    plt.colorbar(label="exp(-Energy) (unnormalized)")
    plt.scatter(real_samples[:, 0], real_samples[:, 1], s=10, alpha=0.5, label="Real Data",
                c="white")
    plt.scatter(samples[:, 0], samples[:, 1], s=10, alpha=0.5, label="Model Samples", c="red")
    plt.xlim(-plot_range, plot_range)
    plt.ylim(-plot_range, plot_range)
    plt.title(f"Epoch {epoch}")
    plt.xlabel("X1")
    plt.ylabel("X2")
    plt.legend()
    plt.grid(True, alpha=0.2)
    plt.savefig(path)
    plt.close()
    return time.perf_counter() - draw_start  # matplotlib's share (bench/tutorial_script.py)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--output", default="out/torchebm_tutorial")
    parser.add_argument("--no-figures", action="store_true")
    add_threads_argument(parser)
    args = parser.parse_args(argv)

    (_, BaseEnergyFunction, GaussianMixtureDataset, ContrastiveDivergence,
     LangevinDynamics) = import_torchebm(
        "torchebm.core.BaseEnergyFunction", "torchebm.datasets.GaussianMixtureDataset",
        "torchebm.losses.ContrastiveDivergence", "torchebm.samplers.LangevinDynamics")
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    set_torch_threads(torch, args.threads)
    torch.manual_seed(SEED)
    plt = None
    import_start = time.perf_counter()
    if not args.no_figures:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        os.makedirs(args.output, exist_ok=True)
    import_seconds = time.perf_counter() - import_start  # matplotlib's import

    class MLPEnergy(BaseEnergyFunction):
        def __init__(self, input_dim, hidden_dim=64):
            super().__init__()
            self.network = nn.Sequential(
                nn.Linear(input_dim, hidden_dim), nn.ReLU(),
                nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                nn.Linear(hidden_dim, 1))

        def forward(self, x):
            return self.network(x).squeeze(-1)

    dataset = GaussianMixtureDataset(n_samples=N_SAMPLES, n_components=4, std=0.1, radius=1.5,
                                     seed=SEED)
    real_samples_for_plot = dataset.get_data().numpy()
    dataloader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, drop_last=True)

    energy_model = MLPEnergy(INPUT_DIM, HIDDEN_DIM)
    sampler = LangevinDynamics(energy_function=energy_model, step_size=SAMPLER_STEP_SIZE,
                               noise_scale=SAMPLER_NOISE_SCALE)
    loss_fn = ContrastiveDivergence(energy_function=energy_model, sampler=sampler, k_steps=CD_K,
                                    persistent=USE_PCD, buffer_size=BATCH_SIZE)
    optimizer = torch.optim.Adam(energy_model.parameters(), lr=LEARNING_RATE)

    print("Starting training...")
    train_seconds, matplotlib_seconds = 0.0, import_seconds
    figures = 0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        epoch_loss = 0.0
        for i, data_batch in enumerate(dataloader):
            optimizer.zero_grad()
            loss, negative_samples = loss_fn(data_batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(energy_model.parameters(), max_norm=1.0)
            optimizer.step()
            epoch_loss += loss.item()
        train_seconds += time.perf_counter() - t0
        avg_epoch_loss = epoch_loss / len(dataloader)
        print(f"Epoch [{epoch + 1}/{args.epochs}], Average Loss: {avg_epoch_loss:.4f}")
        if plt is not None and ((epoch + 1) % VISUALIZE_EVERY == 0 or epoch == 0):
            print("Generating visualization...")
            figures += 1
            matplotlib_seconds += plot_energy_and_samples(
                plt, torch, energy_model, real_samples_for_plot, sampler, epoch + 1,
                os.path.join(args.output, f"epoch_{epoch + 1:03d}.png"), n_steps=200)
    print(f"Training finished: {args.epochs} epochs in {train_seconds:.3f} s of CD iterations")

    final_samples = sampler.sample(dim=INPUT_DIM, n_steps=500, n_samples=500)
    if plt is not None:
        figures += 1
        matplotlib_seconds += plot_energy_and_samples(
            plt, torch, energy_model, real_samples_for_plot, sampler, args.epochs,
            os.path.join(args.output, "final.png"), n_steps=500)
    print(f"Final samples: {tuple(final_samples.shape)}")
    print(f"Figures: {figures} drawn, "
          f"{matplotlib_seconds:.3f} s in matplotlib (import and drawing)")


if __name__ == "__main__":
    main(sys.argv[1:])
