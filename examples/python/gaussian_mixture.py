#!/usr/bin/python3
"""TorchEBM's Gaussian-mixture tutorial with cuEBM in place of TorchEBM.

The structure follows the tutorial line for line: hyperparameters, the dataset, the MLP energy,
the Langevin sampler, contrastive divergence, the optimiser, the training loop with a figure at
epoch 1 and every VISUALIZE_EVERY epochs, and the final samples. What changes: cuebm's classes,
and the four lines of TorchEBM's inner loop (zero_grad, loss_fn(batch), backward,
clip_grad_norm_ + optimizer.step) are one call, loss_fn.step(batch), which runs the whole CD-10
iteration with Adam and clipping in C++.

Figures (density exp(-E) with the data in white and model samples in red, as the tutorial
draws them) go to --output when matplotlib is installed; without it they are skipped with a
message. Usage: examples/python/gaussian_mixture.py [--epochs 200] [--output out/python_tutorial]
[--no-figures] [--threads N]
"""

import argparse
import os
import sys
import time

import numpy as np

import cuebm
from cuebm import ContrastiveDivergence, GaussianMixtureDataset, LangevinDynamics, MLPEnergy

# Hyperparameters (the tutorial's)
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


def load_pyplot():
    """matplotlib.pyplot with a file backend, or None (figures skipped) when not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: figures are skipped")
        return None
    return plt


def plot_energy_and_samples(plt, energy_model, real_samples, sampler, epoch, path, n_steps,
                            grid_size=100, plot_range=2.5):
    """The tutorial's figure: exp(-E) on a grid, normalised to max 1, filled contours with a
    colour bar, the data (white) and 500 model samples from N(0, I) (red)."""
    x = np.linspace(-plot_range, plot_range, grid_size)
    y = np.linspace(-plot_range, plot_range, grid_size)
    xx, yy = np.meshgrid(x, y)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)
    energy = energy_model(grid).reshape(grid_size, grid_size)
    density = np.exp(-(energy - energy.min()))
    samples = sampler.sample(dim=INPUT_DIM, n_steps=n_steps, n_samples=500)
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
    parser.add_argument("--output", default="out/python_tutorial")
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        cuebm.set_num_threads(args.threads)
    import_start = time.perf_counter()
    plt = None if args.no_figures else load_pyplot()
    import_seconds = time.perf_counter() - import_start  # matplotlib's import
    if plt is not None:
        os.makedirs(args.output, exist_ok=True)

    # Data: the tutorial's mixture, and cuEBM's loader (shuffled per epoch, last batch dropped)
    dataset = GaussianMixtureDataset(n_samples=N_SAMPLES, n_components=4, std=0.1, radius=1.5,
                                     seed=SEED)
    real_samples_for_plot = dataset.get_data()
    dataloader = cuebm.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, drop_last=True)

    # Model, sampler, loss (with Adam(LEARNING_RATE) and clip_grad_norm 1.0 inside)
    energy_model = MLPEnergy(INPUT_DIM, hidden_dim=HIDDEN_DIM)
    sampler = LangevinDynamics(energy_model, step_size=SAMPLER_STEP_SIZE,
                               noise_scale=SAMPLER_NOISE_SCALE)
    loss_fn = ContrastiveDivergence(energy_model, sampler, k_steps=CD_K, persistent=USE_PCD,
                                    buffer_size=BATCH_SIZE, lr=LEARNING_RATE, max_grad_norm=1.0)

    print("Starting training...")
    train_seconds, matplotlib_seconds = 0.0, import_seconds
    figures = 0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        epoch_loss = 0.0
        for i, data_batch in enumerate(dataloader.epoch(epoch)):
            epoch_loss += loss_fn.step(data_batch)
        train_seconds += time.perf_counter() - t0
        avg_epoch_loss = epoch_loss / len(dataloader)
        print(f"Epoch [{epoch + 1}/{args.epochs}], Average Loss: {avg_epoch_loss:.4f}")
        if plt is not None and ((epoch + 1) % VISUALIZE_EVERY == 0 or epoch == 0):
            print("Generating visualization...")
            figures += 1
            matplotlib_seconds += plot_energy_and_samples(
                plt, energy_model, real_samples_for_plot, sampler, epoch + 1,
                os.path.join(args.output, f"epoch_{epoch + 1:03d}.png"), n_steps=200)
    print(f"Training finished: {args.epochs} epochs in {train_seconds:.3f} s of CD iterations")

    # Final samples (500 chains, 500 steps) and the modes they cover
    final_samples = sampler.sample(dim=INPUT_DIM, n_steps=500, n_samples=500)
    if plt is not None:
        figures += 1
        matplotlib_seconds += plot_energy_and_samples(
            plt, energy_model, real_samples_for_plot, sampler, args.epochs,
            os.path.join(args.output, "final.png"), n_steps=500)
    print(f"Figures: {figures} drawn, "
          f"{matplotlib_seconds:.3f} s in matplotlib (import and drawing)")
    modes = cuebm.mode_report(final_samples, cuebm.gaussian_mixture_centres(4, 1.5), std=0.1)
    print(f"Modes covered: {modes['covered']}/{modes['total']}, "
          f"{100 * modes['share_near_mode']:.0f}% of the samples within 3 std of a mode")
    return {"model": energy_model, "samples": final_samples, "modes": modes,
            "train_seconds": train_seconds}


if __name__ == "__main__":
    main(sys.argv[1:])
