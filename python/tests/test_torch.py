"""cuebm.torch: PyTorch modules round-trip, the autograd Function's gradients equal
torch.autograd's, gradcheck, and the sampler reads the module's current weights."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")
nn = torch.nn

import cuebm  # noqa: E402
import cuebm.torch as ct  # noqa: E402

ACTS = [nn.ReLU, nn.SiLU, nn.Tanh, nn.Softplus, nn.LeakyReLU, nn.GELU]


def torch_mlp(act, dims=(2, 16, 8), seed=0):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers, nn.Linear(dims[-1], 1))


@pytest.mark.parametrize("act", ACTS)
def test_from_torch_gives_the_same_energies_and_round_trips(act):
    net = torch_mlp(act)
    model = cuebm.MLPEnergy.from_torch(net)
    x = torch.randn(200, 2)
    with torch.no_grad():
        ref = net(x).squeeze(-1)
    # float32 both sides, different summation orders: 1e-5 relative.
    np.testing.assert_allclose(model(x).numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    back = model.to_torch()
    assert isinstance(back, ct.TorchMLPEnergy)
    for (k, v), w in zip(back.state_dict().items(), net.state_dict().values()):
        assert k.startswith("network.")
        assert torch.equal(v, w)  # exact copies both ways
    assert list(back.state_dict()) == list(model.state_dict())


def test_from_torch_rejects_what_cuebm_cannot_run():
    with pytest.raises(ValueError, match="activation Sigmoid"):
        cuebm.MLPEnergy.from_torch(nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1)))
    with pytest.raises(ValueError, match="1 output"):
        cuebm.MLPEnergy.from_torch(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="Softplus needs beta=1"):
        cuebm.MLPEnergy.from_torch(nn.Sequential(nn.Linear(2, 4), nn.Softplus(beta=2),
                                                 nn.Linear(4, 1)))


@pytest.mark.parametrize("act", [nn.SiLU, nn.Tanh, nn.ReLU, nn.GELU])
def test_autograd_function_gradients_equal_torch_autograd(act):
    net = torch_mlp(act, (3, 32, 16), seed=1)
    x = torch.randn(64, 3, requires_grad=True)
    w = torch.randn(64)  # a non-trivial upstream gradient
    (net(x).squeeze(-1) * w).sum().backward()
    ref_x, ref_p = x.grad.clone(), [p.grad.clone() for p in net.parameters()]
    x.grad = None
    net.zero_grad()
    (ct.mlp_energy(x, net) * w).sum().backward()
    # float32 kernels against float32 autograd, different orders: rtol 1e-5 (atol for sums
    # that cancel to near zero).
    torch.testing.assert_close(x.grad, ref_x, rtol=1e-5, atol=1e-6)
    for p, r in zip(net.parameters(), ref_p):
        torch.testing.assert_close(p.grad, r, rtol=1e-5, atol=1e-5)


def test_gradcheck_in_float64_at_float32_tolerance():
    # The kernels compute in float32, so finite differences in float64 see float32 rounding:
    # with eps = 1e-3 the numerical derivative carries about 1e-7 / 1e-3 = 1e-4 of relative
    # noise; atol = rtol = 2e-3 leaves room and still fails for a wrong sign or factor.
    net = torch_mlp(nn.Tanh, (2, 8, 8), seed=2).double()
    mlp = ct._cpp_model(net)
    x = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    p = ct.flat_parameters(net).detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, p: ct.MLPEnergyFunction.apply(x, p, mlp), (x, p),
                                    eps=1e-3, atol=2e-3, rtol=2e-3)


def test_cuebm_module_trains_with_a_torch_optimizer():
    torch.manual_seed(0)
    a, b = ct.MLPEnergy(2, (16, 16), "silu"), ct.TorchMLPEnergy(2, (16, 16), "silu")
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2)
    x = torch.randn(128, 2)
    for _ in range(5):
        for m, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            (m(x) ** 2).mean().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-5)


def test_sampler_takes_the_current_weights_each_call():
    net = ct.TorchMLPEnergy(2, (16, 16), "relu")
    sampler = ct.LangevinDynamics(net, step_size=0.05, noise_scale=0.2)
    x0 = torch.randn(50, 2)
    first = sampler.sample(x=x0, n_steps=20, seed=4)
    ref = cuebm.LangevinDynamics(cuebm.MLPEnergy.from_torch(net), 0.05, 0.2).sample(
        x=x0, n_steps=20, seed=4)
    assert isinstance(first, torch.Tensor)
    torch.testing.assert_close(first, ref, rtol=0, atol=0)
    with torch.no_grad():
        net.network[-1].weight.mul_(3.0)
    changed = sampler.sample(x=x0, n_steps=20, seed=4)
    ref = cuebm.LangevinDynamics(cuebm.MLPEnergy.from_torch(net), 0.05, 0.2).sample(
        x=x0, n_steps=20, seed=4)
    torch.testing.assert_close(changed, ref, rtol=0, atol=0)
    assert not torch.equal(changed, first)
    assert tuple(sampler.sample(dim=2, n_steps=3, n_samples=7).shape) == (7, 2)
