"""Score-matching losses through the bindings: bit-identical to cuebm::ScoreLoss called directly
and to the `cuebm loss` command, exact score matching against torch.autograd in float64, the
trainer with a score-matching loss (and with MCMC negatives) equal to the C++ training run."""

import numpy as np
import pytest

import cuebm
from cuebm import _cuebm

from conftest import torch_or_skip

# Every loss with settings away from the defaults, so a setting that is dropped or mixed up on
# the way to C++ changes the result.
CASES = [
    dict(kind="sm", hessian_method="exact"),
    dict(kind="sm", hessian_method="torchebm_approx", regularization_strength=0.25),
    dict(kind="ssm", n_projections=3, projection_type="sphere"),
    dict(kind="ssm", n_projections=2, projection_type="gaussian", regularization_strength=0.5),
    dict(kind="dsm", noise_scale=0.3),
    dict(kind="dsm", noise_scale=0.2, denoising_sign="torchebm", regularization_strength=0.1),
]


def loss_object(model, case, seed):
    """The Python-level loss object for a CASES entry."""
    c = dict(case)
    kind = c.pop("kind")
    reg = c.pop("regularization_strength", 0.0)
    if kind == "sm":
        method = {"exact": "exact", "torchebm_approx": "approx"}[c["hessian_method"]]
        return cuebm.ScoreMatching(model, method, reg, seed=seed)
    if kind == "ssm":
        return cuebm.SlicedScoreMatching(model, c["n_projections"], c["projection_type"], reg,
                                         seed=seed)
    return cuebm.DenosingScoreMatching(model, c["noise_scale"], reg,
                                       denoising_sign=c.get("denoising_sign", "correct"),
                                       seed=seed)


def silu_model(seed=3):
    return cuebm.MLPEnergy(2, (16, 16), "silu", seed=seed)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_loss_and_gradient_equal_the_cpp_score_loss(case):
    model = silu_model()
    x, ref_loss, ref_grad = _cuebm.testing.score_loss_reference(model._impl, 37, 11, loss_seed=7,
                                                       iteration=4, **case)
    loss_fn = loss_object(model, case, seed=7)
    loss, grad = loss_fn.loss_and_gradient(x, iteration=4)
    assert loss == ref_loss  # bit for bit: the same C++ call
    np.testing.assert_array_equal(grad, ref_grad)
    assert loss_fn(x, iteration=4) == ref_loss
    assert grad.shape == (model.num_parameters,) and np.any(grad != 0)


def test_consecutive_calls_take_consecutive_iterations():
    model = silu_model()
    x = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    loss_fn = cuebm.SlicedScoreMatching(model, n_projections=1, seed=2)
    first, second = loss_fn(x), loss_fn(x)
    assert loss_fn.iteration == 2
    assert first == loss_fn(x, iteration=0) and second == loss_fn(x, iteration=1)
    assert first != second  # fresh projections per call
    assert loss_fn.iteration == 2  # an explicit iteration does not advance the count


def test_cli_loss_prints_the_same_value_and_gradient(cli, tmp_path):
    model = silu_model()
    x = np.random.default_rng(5).normal(size=(29, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    model.save(tmp_path / "model.safetensors")
    runs = [
        (["--loss", "sm"], cuebm.ScoreMatching(model, seed=9)),
        (["--loss", "ssm", "--projections", "4", "--projection", "gaussian", "--sm-reg", "0.5"],
         cuebm.SlicedScoreMatching(model, 4, "gaussian", 0.5, seed=9)),
        (["--loss", "dsm", "--dsm-noise", "0.25", "--dsm-sign", "torchebm"],
         cuebm.DenoisingScoreMatching(model, 0.25, denoising_sign="torchebm", seed=9)),
    ]
    for args, loss_fn in runs:
        grad_path = tmp_path / "grad.safetensors"
        out = cli("loss", "--model", tmp_path / "model.safetensors", "-i", tmp_path / "x.npy",
                  "--seed", 9, "--iteration", 3, "--device", "cpu", "-g", grad_path, *args)
        value = float(next(line.split()[1] for line in out.splitlines()
                           if line.startswith("value ")))
        loss, grad = loss_fn.loss_and_gradient(x, iteration=3)
        assert loss == value  # %.17g round-trips a double exactly
        tensors, _ = cuebm.load_safetensors(grad_path)
        cli_grad = np.concatenate([tensors[name].ravel() for name, *_ in model.parameter_info()])
        np.testing.assert_array_equal(grad, cli_grad)


def test_exact_score_matching_matches_torch_autograd_in_float64():
    torch = torch_or_skip()
    model = cuebm.MLPEnergy(3, (12, 10), "tanh", seed=1)
    x = np.random.default_rng(2).normal(size=(16, 3)).astype(np.float32)
    reg = 0.3
    loss, grad = cuebm.ScoreMatching(model, regularization_strength=reg).loss_and_gradient(x)

    net = model.to_torch().double()
    xt = torch.from_numpy(x).double().requires_grad_(True)
    g = torch.autograd.grad(net(xt).sum(), xt, create_graph=True)[0]
    trace = sum(torch.autograd.grad(g[:, i].sum(), xt, create_graph=True)[0][:, i]
                for i in range(3))
    ref = (0.5 * (g ** 2).sum(1) - trace).mean() + reg * (g ** 2).sum(1).mean()
    ref.backward()
    # The output bias never enters the loss: autograd leaves its grad None, cuEBM writes 0.
    ref_grad = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in net.parameters()]).numpy()
    # float32 kernels against a float64 oracle: the loss is a mean of O(1) terms through two
    # 10-12 unit layers, so float32 rounding (1.2e-7 relative per operation) stays below 1e-5
    # relative; the gradient's smallest entries are sums with cancellation, hence an absolute
    # floor of 1e-5 against entries of order 0.1-1.
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-5)


def test_score_loss_errors_and_aliases():
    model = silu_model()
    assert cuebm.DenoisingScoreMatching is cuebm.DenosingScoreMatching
    with pytest.raises(TypeError, match="MLPEnergy"):
        cuebm.ScoreMatching(cuebm.HarmonicEnergy())
    with pytest.raises(cuebm.InvalidArgument, match="n_projections must be >= 1"):
        cuebm.SlicedScoreMatching(model, n_projections=0)
    with pytest.raises(cuebm.InvalidArgument, match="noise_scale"):
        cuebm.DenosingScoreMatching(model, noise_scale=-1.0)
    with pytest.raises(cuebm.InvalidArgument, match="projection"):
        cuebm.SlicedScoreMatching(model, projection_type="uniform")
    with pytest.raises(ValueError, match="hessian_method"):
        cuebm.ScoreMatching(model, hessian_method="hutchinson")
    with pytest.raises(ValueError, match="x has 3 columns"):
        cuebm.ScoreMatching(model)(np.zeros((4, 3), np.float32))
    with pytest.raises(TypeError, match="int32"):
        cuebm.ScoreMatching(model)(np.zeros((4, 2), np.int32))


SSM_RUN = dict(activation="silu", hidden=[16, 16], epochs=4, batch_size=128, lr=1e-2, seed=3)


def test_python_score_matching_loop_equals_the_cpp_training_run():
    # The trainer with a SlicedScoreMatching object against cuebm::run_training with loss ssm:
    # the draws are keyed by (seed, iteration), so the parameters agree bit for bit.
    report = cuebm.train(log=None, loss="ssm", n_projections=3, projection_type="sphere",
                         regularization_strength=0.01, **SSM_RUN)
    assert report["temperature"] == 1.0 and "ssm" in report["temperature_source"]
    data = cuebm.GaussianMixtureDataset(n_samples=500, n_components=4, std=0.1, radius=1.5,
                                        seed=42).get_data()
    model = cuebm.MLPEnergy(2, (16, 16), "silu", seed=3)
    loss = cuebm.SlicedScoreMatching(model, 3, "sphere", 0.01)
    trainer = cuebm.Trainer(model, loss=loss, lr=1e-2, seed=3)
    first_batch = np.array(next(iter(cuebm.DataLoader(data, 128, seed=3).epoch(0))))
    expected_first = cuebm.SlicedScoreMatching(model, 3, "sphere", 0.01, seed=3)(
        first_batch, iteration=0)
    losses = trainer.fit(data, SSM_RUN["epochs"], 128, seed=3)
    np.testing.assert_array_equal(model.parameters(), report["final_parameters"])
    np.testing.assert_allclose(losses, report["epoch_loss"], rtol=1e-12)
    assert trainer.last_negatives is None and np.isnan(trainer.last_stats["neg_energy"])
    # The first step's loss is the loss object's value at iteration 0 with the trainer's seed.
    model2 = cuebm.MLPEnergy(2, (16, 16), "silu", seed=3)
    t2 = cuebm.Trainer(model2, loss="ssm", lr=1e-2, seed=3)  # defaults: 5 rademacher
    assert t2.step(first_batch) != expected_first
    model3 = cuebm.MLPEnergy(2, (16, 16), "silu", seed=3)
    t3 = cuebm.Trainer(model3, loss=cuebm.SlicedScoreMatching(model3, 3, "sphere", 0.01),
                       lr=1e-2, seed=3)
    assert t3.step(first_batch) == expected_first


def test_python_mala_negatives_equal_the_cpp_training_run():
    run = dict(epochs=3, batch_size=128, seed=1, step_size=0.05, noise_scale=0.1, k_steps=5)
    report = cuebm.train(log=None, sampler="mala", **run)
    data = cuebm.GaussianMixtureDataset(n_samples=500, n_components=4, std=0.1, radius=1.5,
                                        seed=42).get_data()
    model = cuebm.MLPEnergy(2, (64, 64), "relu", seed=1)
    loss_fn = cuebm.ContrastiveDivergence(model, cuebm.MALA(model, 0.05, 0.1), k_steps=5, seed=1)
    losses = loss_fn.fit(data, 3, 128, seed=1)
    np.testing.assert_array_equal(model.parameters(), report["final_parameters"])
    np.testing.assert_allclose(losses, report["epoch_loss"], rtol=1e-12)
    assert 0 < loss_fn.last_stats["acceptance"] <= 1
    assert np.all((report["epoch_acceptance"] > 0) & (report["epoch_acceptance"] <= 1))


def test_trainer_rejects_bad_loss_settings():
    model = silu_model()
    with pytest.raises(ValueError, match="uses no sampler"):
        cuebm.Trainer(model, cuebm.MALA(model), loss="sm")
    with pytest.raises(ValueError, match="loss must be one of"):
        cuebm.Trainer(model, loss="nce")
    with pytest.raises(ValueError, match="another model"):
        cuebm.Trainer(model, loss=cuebm.ScoreMatching(silu_model()))
    with pytest.raises(cuebm.InvalidArgument, match="sm"):
        cuebm.train(log=None, loss="sm", sampler="mala", epochs=1)


def test_torch_score_losses_fill_the_module_gradient():
    torch = torch_or_skip()
    import cuebm.torch as ct

    module = ct.TorchMLPEnergy(2, (16, 16), "silu")
    x = torch.randn(25, 2, generator=torch.Generator().manual_seed(0))
    cpu = cuebm.MLPEnergy.from_torch(module)
    for torch_loss, cpu_loss in [
        (ct.ScoreMatching(module, seed=4), cuebm.ScoreMatching(cpu, seed=4)),
        (ct.SlicedScoreMatching(module, 2, "rademacher", seed=4),
         cuebm.SlicedScoreMatching(cpu, 2, "rademacher", seed=4)),
        (ct.DenoisingScoreMatching(module, 0.1, seed=4),
         cuebm.DenosingScoreMatching(cpu, 0.1, seed=4)),
    ]:
        module.zero_grad()
        loss = torch_loss(x)
        loss.backward()
        ref_loss, ref_grad = cpu_loss.loss_and_gradient(x.numpy())
        assert loss.item() == np.float32(ref_loss)  # the C++ double, rounded to the dtype
        got = torch.cat([p.grad.reshape(-1) for p in module.parameters()]).numpy()
        np.testing.assert_array_equal(got, ref_grad)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    before = module.network[0].weight.detach().clone()
    opt.step()
    assert not torch.equal(before, module.network[0].weight)
