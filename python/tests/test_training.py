"""Contrastive divergence through the bindings: the loss is the closed form, the Python loop
equals the C++ trainer's whole run bit for bit, and checkpoints round-trip."""

import numpy as np
import pytest

import cuebm

TUTORIAL = dict(n_samples=500, n_components=4, std=0.1, radius=1.5, seed=42)


def tutorial_parts(seed=0):
    model = cuebm.MLPEnergy(2, (64, 64), "relu", seed=seed)
    sampler = cuebm.LangevinDynamics(model, step_size=0.1, noise_scale=0.1)
    loss_fn = cuebm.ContrastiveDivergence(model, sampler, k_steps=10, lr=1e-3, seed=seed)
    return model, loss_fn


def test_step_returns_the_cd_loss_of_the_negatives():
    data = cuebm.GaussianMixtureDataset(**TUTORIAL).get_data()
    model, loss_fn = tutorial_parts()
    before = model.copy()
    batch = data[:128]
    loss = loss_fn.step(batch)
    neg = loss_fn.last_negatives
    # L = mean E+ - mean E- + w (mean E+^2 + mean E-^2) at the parameters before the update,
    # here in float64 from float32 energies: agreement to 1e-6 relative.
    pos_e, neg_e = before(batch).astype(np.float64), before(neg).astype(np.float64)
    ref = pos_e.mean() - neg_e.mean() + 0.001 * ((pos_e**2).mean() + (neg_e**2).mean())
    assert loss == pytest.approx(ref, rel=1e-6, abs=1e-7)
    assert not np.array_equal(model.parameters(), before.parameters())  # Adam stepped
    assert loss_fn.iteration == 1 and loss_fn.last_stats["grad_norm"] > 0
    with pytest.raises(cuebm.InvalidArgument, match="larger than max_batch"):
        loss_fn.step(data[:200])


def test_python_tutorial_loop_equals_the_cpp_training_run():
    # The example's loop (DataLoader shuffled by (seed, epoch), CD-10 steps) against
    # cuebm::run_training with the same settings: the same parameters bit for bit.
    epochs = 60
    report = cuebm.train(epochs=epochs, log=None, seed=0)
    data = cuebm.GaussianMixtureDataset(**TUTORIAL).get_data()
    model, loss_fn = tutorial_parts()
    loader = cuebm.DataLoader(data, batch_size=256, shuffle=True, drop_last=True, seed=0)
    losses = []
    for epoch in range(epochs):
        losses.append(np.mean([loss_fn.step(b) for b in loader.epoch(epoch)]))
    np.testing.assert_array_equal(model.parameters(), report["final_parameters"])
    np.testing.assert_allclose(losses, report["epoch_loss"], rtol=1e-12)
    # fit() runs the same loop in C++.
    model2, loss_fn2 = tutorial_parts()
    np.testing.assert_allclose(loss_fn2.fit(data, epochs, 256, seed=0), report["epoch_loss"],
                               rtol=1e-12)
    np.testing.assert_array_equal(model2.parameters(), report["final_parameters"])


def test_checkpoint_round_trip(tmp_path):
    data = cuebm.GaussianMixtureDataset(**TUTORIAL).get_data()
    model, loss_fn = tutorial_parts()
    losses = loss_fn.fit(data, 3, 256)
    cuebm.save_checkpoint(tmp_path / "ck.safetensors", loss_fn, epoch=3, epoch_loss=losses)
    ck = cuebm.load_checkpoint(tmp_path / "ck.safetensors")
    np.testing.assert_array_equal(ck["parameters"], model.parameters())
    opt = loss_fn.optimizer_state()
    assert ck["adam_steps"] == opt["steps"] == 3
    np.testing.assert_array_equal(ck["adam_m"], opt["m"])
    np.testing.assert_array_equal(ck["adam_v"], opt["v"])
    assert ck["epoch"] == 3 and ck["epoch_loss"] == list(losses)
    loaded = cuebm.MLPEnergy.load(tmp_path / "ck.safetensors")  # a checkpoint is a model file
    np.testing.assert_array_equal(loaded.parameters(), model.parameters())


def test_training_rejects_what_it_cannot_train():
    with pytest.raises(TypeError, match="MLPEnergy"):
        cuebm.ContrastiveDivergence(cuebm.HarmonicEnergy())
    model = cuebm.MLPEnergy(2, (8, 8))
    loss_fn = cuebm.ContrastiveDivergence(model, cuebm.LangevinDynamics(model, 0.1, 0.1))
    with pytest.raises(ValueError, match="batch has 3 columns"):
        loss_fn.step(np.zeros((4, 3), np.float32))
