"""Samplers: Langevin through the bindings (split into chunks for Ctrl-C) equals one C++ call
bit for bit; the MCMC samplers equal the command line's; closed forms for the statistics."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import cuebm
from cuebm import _cuebm
from conftest import torch_or_skip


@pytest.fixture(scope="module")
def mlp():
    return cuebm.MLPEnergy(2, (32, 32), "silu", seed=7)


@pytest.mark.parametrize("chunk_steps", [0, 1, 7, 40])
def test_langevin_in_chunks_equals_one_cpp_call(mlp, chunk_steps):
    ref = _cuebm.testing.langevin_reference(mlp._impl, 64, 40, 0.05, 0.3, 11, 5, True)
    sampler = cuebm.LangevinDynamics(mlp, step_size=0.05, noise_scale=0.3)
    traj, diag = sampler.sample(dim=2, n_steps=40, n_samples=64, thin=5, return_trajectory=True,
                                return_diagnostics=True, seed=11, chunk_steps=chunk_steps)
    # TorchEBM's layout (n_samples, n_kept, dim) of the C++ (n_kept, n, dim) trajectory.
    assert traj.shape == (64, 8, 2)
    np.testing.assert_array_equal(traj, ref["trajectory"].transpose(1, 0, 2))
    np.testing.assert_array_equal(traj[:, -1], ref["samples"])
    for key in ("mean", "variance", "mean_energy"):
        np.testing.assert_array_equal(diag[key], ref[key])
    assert diag["temperature"] == pytest.approx(0.09)
    samples = sampler.sample(dim=2, n_steps=40, n_samples=64, seed=11, chunk_steps=chunk_steps)
    np.testing.assert_array_equal(samples, ref["samples"])


def test_langevin_from_given_states_and_torch(mlp, rng):
    torch = torch_or_skip()
    x0 = rng.standard_normal((50, 2)).astype(np.float32)
    sampler = cuebm.LangevinDynamics(mlp, step_size=0.1, noise_scale=0.1)
    a = sampler.sample(x=x0, n_steps=30, seed=3)
    b = sampler.sample(x=torch.from_numpy(x0.astype(np.float64)), n_steps=30, seed=3)
    assert isinstance(b, torch.Tensor)
    np.testing.assert_array_equal(b.numpy(), a)
    traj = sampler.sample(x=torch.from_numpy(x0), n_steps=30, seed=3, return_trajectory=True)
    assert tuple(traj.shape) == (50, 30, 2)
    np.testing.assert_array_equal(traj[:, -1].numpy(), a)
    assert np.array_equal(x0, x0.copy())  # the input is not written


def test_consecutive_calls_continue_the_noise_stream(mlp, rng):
    x0 = rng.standard_normal((20, 2)).astype(np.float32)
    one = cuebm.LangevinDynamics(mlp, 0.05, 0.5, seed=9).sample(x=x0, n_steps=50)
    s = cuebm.LangevinDynamics(mlp, 0.05, 0.5, seed=9)
    two = s.sample(x=s.sample(x=x0, n_steps=20), n_steps=30)
    np.testing.assert_array_equal(two, one)
    assert not np.array_equal(s.sample(x=x0, n_steps=5), s.sample(x=x0, n_steps=5))


def test_langevin_equals_the_command_line(cli, tmp_path, mlp):
    mlp.save(tmp_path / "m.safetensors")
    cli("sample", "--model", tmp_path / "m.safetensors", "--chains", 200, "--steps", 60,
        "--step-size", 0.05, "--noise-scale", 0.2, "--seed", 5, "--device", "cpu", "-o",
        tmp_path / "s.npy")
    ours = cuebm.LangevinDynamics(mlp, 0.05, 0.2).sample(dim=2, n_steps=60, n_samples=200,
                                                          seed=5)
    np.testing.assert_array_equal(ours, np.load(tmp_path / "s.npy"))


@pytest.mark.parametrize("sampler", ["mala", "hmc"])
def test_mcmc_equals_the_command_line(cli, tmp_path, mlp, sampler):
    mlp.save(tmp_path / "m.safetensors")
    cli("sample", "--model", tmp_path / "m.safetensors", "--sampler", sampler, "--chains", 100,
        "--steps", 40, "--step-size", 0.05, "--noise-scale", 0.5, "--leapfrog", 4, "--seed", 2,
        "--device", "cpu", "-o", tmp_path / "s.npy")
    if sampler == "mala":
        s = cuebm.MALA(mlp, step_size=0.05, noise_scale=0.5)
    else:
        s = cuebm.HamiltonianMonteCarlo(mlp, step_size=0.05, n_leapfrog_steps=4)
    ours = s.sample(dim=2, n_steps=40, n_samples=100, seed=2)
    np.testing.assert_array_equal(ours, np.load(tmp_path / "s.npy"))
    assert 0 < s.last_info["mean_acceptance"] <= 1


MCMC_KEYS = ("samples", "energy", "acceptance", "mean_acceptance", "temperature",
             "energy_trace", "energy_rhat", "energy_ess")


@pytest.mark.parametrize("energy", ["mlp", "gaussian"])
@pytest.mark.parametrize("sampler", ["mala", "hmc"])
@pytest.mark.parametrize("chunk_steps", [1, 3, 7, 40])
def test_mcmc_in_chunks_equals_one_cpp_call(mlp, energy, sampler, chunk_steps):
    # 40 steps in chunks of 1, 3 (a shorter last chunk), 7 and 40 (one call) against one
    # mala_sample / hmc_sample call in C++: states, energies, the per-chain acceptance
    # gathered from the chunks' counts, and the diagnostics of the whole trace, bit for bit.
    e = mlp if energy == "mlp" else cuebm.GaussianEnergy(np.zeros(2), np.diag([0.5, 2.0]))
    # Steps large enough that some proposals are rejected (the MLP's energy is nearly flat).
    step = {("mala", "mlp"): 4.0, ("mala", "gaussian"): 0.5, ("hmc", "mlp"): 3.0,
            ("hmc", "gaussian"): 1.0}[sampler, energy]
    leapfrog = 3
    ref = _cuebm.testing.mcmc_reference(e._impl, sampler, 64, 40, step, 0.7, leapfrog, 11, 5,
                                        True)
    if sampler == "mala":
        s = cuebm.MALA(e, step_size=step, noise_scale=0.7)
    else:
        s = cuebm.HamiltonianMonteCarlo(e, step_size=step, n_leapfrog_steps=leapfrog)
    x, info = s.sample(dim=2, n_steps=40, n_samples=64, return_diagnostics=True, seed=11,
                       step_offset=5, chunk_steps=chunk_steps)
    np.testing.assert_array_equal(x, ref["samples"])
    for key in MCMC_KEYS[1:]:
        np.testing.assert_array_equal(info[key], ref[key], err_msg=key)
    # Some proposals rejected and some accepted, so the gathered counts are tested.
    assert 0 < info["mean_acceptance"] < 1
    assert len(np.unique(info["acceptance"])) > 1
    plain = s.sample(dim=2, n_steps=40, n_samples=64, seed=11, step_offset=5,
                     chunk_steps=chunk_steps)
    np.testing.assert_array_equal(plain, ref["samples"])


def test_mcmc_from_given_states_in_chunks(mlp, rng):
    x0 = rng.standard_normal((30, 2)).astype(np.float32)
    s = cuebm.MALA(mlp, step_size=0.05, noise_scale=0.5)
    one = s.sample(x=x0, n_steps=25, seed=4, chunk_steps=25)
    np.testing.assert_array_equal(s.sample(x=x0, n_steps=25, seed=4, chunk_steps=4), one)
    two = s.sample(x=s.sample(x=x0, n_steps=10, seed=4), n_steps=15, seed=4, step_offset=10)
    np.testing.assert_array_equal(two, one)


@pytest.mark.parametrize("sampler", ["mala", "hmc"])
def test_ctrl_c_interrupts_a_long_mcmc_run(mlp, sampler):
    # A run of 30-60 s stopped after 0.3 s: KeyboardInterrupt within a chunk of 20 steps (a
    # few ms); without the checks between chunks it would be raised only at the end.
    if sampler == "mala":
        s = cuebm.MALA(mlp, 0.01, 0.1)
    else:
        s = cuebm.HamiltonianMonteCarlo(mlp, 0.01, n_leapfrog_steps=2)
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        s.sample(dim=2, n_steps=2_000_000, n_samples=64, chunk_steps=20)
    assert time.perf_counter() - t0 < 5
    timer.join()


def test_mala_and_hmc_sample_a_gaussian_exactly():
    # Variance 1 target; a large step that biases unadjusted Langevin by 33% (eta = 0.5:
    # 1 / (1 - eta / 2) = 1.33). 4000 chains: the standard error of a variance is
    # sqrt(2 / 4000) = 0.022, tolerance 4 of them.
    energy = cuebm.HarmonicEnergy(1.0, dim=2)
    mala = cuebm.MALA(energy, step_size=0.5, noise_scale=1.0)
    x = mala.sample(dim=2, n_steps=200, n_samples=4000)
    assert np.all(np.abs(x.var(0) - 1.0) < 4 * 0.022)
    hmc = cuebm.HamiltonianMonteCarlo(energy, step_size=0.3, n_leapfrog_steps=5)
    x, info = hmc.sample(dim=2, n_steps=100, n_samples=4000, return_diagnostics=True)
    assert np.all(np.abs(x.var(0) - 1.0) < 4 * 0.022)
    assert info["energy_trace"].shape == (100, 4000) and np.isfinite(info["energy_rhat"])
    ula = cuebm.LangevinDynamics(energy, 0.5, 1.0).sample(dim=2, n_steps=200, n_samples=4000)
    assert np.all(ula.var(0) > 1.2)  # the bias the exact samplers remove


def test_parallel_tempering_and_ais():
    energy = cuebm.DoubleWellEnergy(2.0, 1.0, dim=1)
    pt = cuebm.ParallelTempering(energy, n_replicas=4, t_min=0.25, t_max=4.0, step_size=0.05)
    a, info = pt.sample(dim=1, n_steps=300, n_samples=200, return_diagnostics=True, seed=1)
    b = pt.sample(dim=1, n_steps=300, n_samples=200, seed=1)
    np.testing.assert_array_equal(a, b)  # repeatable
    np.testing.assert_allclose(info["temperatures"], 0.25 * 16 ** (np.arange(4) / 3), rtol=1e-12)
    assert info["swap_acceptance"].shape == (3,) and np.all(info["swap_acceptance"] > 0)
    assert 0.3 < (a > 0).mean() < 0.7  # both wells, by symmetry
    # log Z of a 3-D Gaussian with covariance 0.5 I at T = 1: (3/2) log(2 pi 0.5).
    g = cuebm.GaussianEnergy(np.zeros(3), 0.5 * np.eye(3))
    r = cuebm.annealed_importance_sampling(g, n_chains=500, n_temperatures=200, seed=3)
    exact = 1.5 * np.log(2 * np.pi * 0.5)
    assert abs(r["log_z"] - exact) < 4 * r["std_error"] + 1e-3
    assert r["log_weights"].shape == (500,)


def test_ctrl_c_interrupts_a_long_langevin_run(mlp):
    # A run of about 10 s stopped after 0.3 s: KeyboardInterrupt within a chunk (a few ms).
    sampler = cuebm.LangevinDynamics(mlp, 0.01, 0.1)
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        sampler.sample(dim=2, n_steps=2_000_000, n_samples=64, chunk_steps=50)
    assert time.perf_counter() - t0 < 5
    timer.join()


def test_sampler_errors_map_to_python_exceptions(mlp):
    with pytest.raises(cuebm.InvalidArgument, match="step"):
        cuebm.LangevinDynamics(mlp, step_size=-1.0).sample(dim=2, n_steps=3, n_samples=2)
    assert issubclass(cuebm.NumericalError, FloatingPointError)
    with pytest.raises(cuebm.NumericalError) as err:
        cuebm.LangevinDynamics(cuebm.HarmonicEnergy(1.0, dim=2), 1e3, 1.0).sample(
            dim=2, n_steps=200, n_samples=4)
    assert isinstance(err.value, ArithmeticError) and "chain" in str(err.value)
    with pytest.raises(ValueError, match="dim=3"):
        cuebm.LangevinDynamics(mlp).sample(dim=3)
