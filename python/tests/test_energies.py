"""Energies: the bindings return exactly what the C++ API computes, for NumPy and torch inputs
in every accepted layout, and reject other dtypes and shapes with the C++ message."""

import math

import numpy as np
import pytest

import cuebm
from cuebm import _cuebm
from conftest import torch_or_skip

ACTIVATIONS = ["relu", "silu", "tanh", "softplus", "leaky_relu", "gelu"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_energy_and_gradient_equal_the_cpp_results(activation):
    model = cuebm.MLPEnergy(3, (16, 8), activation, seed=5)
    x, e_ref, g_ref = _cuebm.testing.energy_reference(model._impl, 77, 9)
    np.testing.assert_array_equal(model(x), e_ref)
    np.testing.assert_array_equal(model.gradient(x), g_ref)
    e, g = model.energy_and_gradient(x)
    np.testing.assert_array_equal(e, e_ref)
    np.testing.assert_array_equal(g, g_ref)


def test_parameter_gradient_equals_the_cpp_result():
    model = cuebm.MLPEnergy(2, (32, 32), "silu", seed=3)
    x, coeff, ref = _cuebm.testing.parameter_gradient_reference(model._impl, 100, 4)
    np.testing.assert_array_equal(model.parameter_gradient(x, coeff), ref)


def test_mlp_matches_a_float64_numpy_forward(rng):
    # An independent oracle: the network in NumPy float64 from the state_dict. float32 math
    # over two layers of 16: relative error about 1e-6; 1e-5 leaves room.
    model = cuebm.MLPEnergy(2, (16, 16), "tanh", seed=1)
    sd = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    x = rng.standard_normal((50, 2)).astype(np.float32)
    h = np.tanh(x @ sd["network.0.weight"].T + sd["network.0.bias"])
    h = np.tanh(h @ sd["network.2.weight"].T + sd["network.2.bias"])
    ref = (h @ sd["network.4.weight"].T + sd["network.4.bias"])[:, 0]
    np.testing.assert_allclose(model(x), ref, rtol=1e-5, atol=1e-6)


def test_float32_contiguous_inputs_are_read_in_place(rng):
    torch = torch_or_skip()
    x = rng.standard_normal((10, 2)).astype(np.float32)
    address, borrowed = _cuebm.testing.input_address(x)
    assert borrowed and address == x.ctypes.data
    t = torch.from_numpy(x)
    address, borrowed = _cuebm.testing.input_address(t)
    assert borrowed and address == t.data_ptr()


def test_float64_and_strided_inputs_are_converted_to_the_same_result(rng):
    model = cuebm.MLPEnergy(2, (16, 16), "relu", seed=2)
    wide = rng.standard_normal((40, 5))
    x64 = wide[:, 1:3]  # float64, strided
    x32 = np.ascontiguousarray(x64, dtype=np.float32)
    ref = model(x32)
    assert not _cuebm.testing.input_address(x64)[1]
    np.testing.assert_array_equal(model(x64), ref)
    np.testing.assert_array_equal(model(x32.astype(np.float32)[::1]), ref)
    fortran = np.asfortranarray(x32)
    assert not _cuebm.testing.input_address(fortran)[1]
    np.testing.assert_array_equal(model(fortran), ref)
    every_other = np.repeat(x32, 2, axis=0)[::2]
    np.testing.assert_array_equal(model(every_other), ref)


def test_torch_inputs_give_torch_results(rng):
    torch = torch_or_skip()
    model = cuebm.MLPEnergy(2, (16, 16), "gelu", seed=2)
    x = rng.standard_normal((30, 2)).astype(np.float32)
    ref_e, ref_g = model(x), model.gradient(x)
    t = torch.from_numpy(x).requires_grad_(True)  # detached by the binding
    e = model(t)
    assert isinstance(e, torch.Tensor) and e.dtype == torch.float32
    np.testing.assert_array_equal(e.numpy(), ref_e)
    np.testing.assert_array_equal(model.gradient(t.double()).numpy(), ref_g)
    np.testing.assert_array_equal(model(torch.from_numpy(x).t().contiguous().t()).numpy(), ref_e)
    np.testing.assert_array_equal(model(torch.from_numpy(np.repeat(x, 3, 0))[::3]).numpy(), ref_e)


@pytest.mark.parametrize("dtype", ["int64", "int32", "float16", "bool", "complex64"])
def test_other_dtypes_raise_type_error_naming_the_dtype(dtype):
    model = cuebm.MLPEnergy(2, (8, 8))
    with pytest.raises(TypeError, match=f"x must be float32 or float64, got {dtype}"):
        model(np.zeros((4, 2), dtype=dtype))
    # The C++ check (for DLPack producers other than NumPy and torch) says the same.
    if dtype != "bool":
        with pytest.raises(TypeError, match=f"got {dtype}"):
            model._impl.energy(np.zeros((4, 2), dtype=dtype))


def test_torch_dtypes_are_named_too():
    torch = torch_or_skip()
    model = cuebm.MLPEnergy(2, (8, 8))
    for dtype, name in [(torch.int64, "int64"), (torch.bool, "bool"), (torch.float16, "float16")]:
        with pytest.raises(TypeError, match=f"got {name}"):
            model(torch.zeros(4, 2, dtype=dtype))


def test_bad_shapes_raise_value_errors_with_the_cpp_message():
    model = cuebm.MLPEnergy(2, (8, 8))
    with pytest.raises(cuebm.InvalidArgument, match="x has 3 columns; the energy's dimension is 2"):
        model(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"x must be a 2-D \(n, dim\) array, got shape \(4,\)"):
        model(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="hidden"):
        cuebm.MLPEnergy(2, ())


def test_state_dict_round_trip_and_checks():
    a = cuebm.MLPEnergy(2, (16, 8), "silu", seed=1)
    b = cuebm.MLPEnergy(2, (16, 8), "silu", seed=2)
    sd = a.state_dict()
    assert list(sd) == ["network.0.weight", "network.0.bias", "network.2.weight",
                        "network.2.bias", "network.4.weight", "network.4.bias"]
    assert sd["network.0.weight"].shape == (16, 2) and sd["network.4.weight"].shape == (1, 8)
    b.load_state_dict(sd)
    np.testing.assert_array_equal(b.parameters(), a.parameters())
    before = b.parameters().copy()
    bad = dict(sd)
    bad["network.2.weight"] = np.zeros((8, 15), np.float32)
    with pytest.raises(ValueError, match=r"'network.2.weight' has shape \(8, 15\), the model "
                                         r"expects \(8, 16\)"):
        b.load_state_dict(bad)
    np.testing.assert_array_equal(b.parameters(), before)  # nothing written
    with pytest.raises(ValueError, match="missing key 'network.4.bias'"):
        b.load_state_dict({k: v for k, v in sd.items() if k != "network.4.bias"})
    with pytest.raises(ValueError, match="unexpected key 'extra'"):
        b.load_state_dict({**sd, "extra": np.zeros(1, np.float32)})


def test_parameters_view_writes_through_and_keeps_the_model_alive(rng):
    model = cuebm.MLPEnergy(2, (8, 8), seed=0)
    x = rng.standard_normal((5, 2)).astype(np.float32)
    view = model.parameters()
    view[-1] += 1.0  # the output bias: every energy rises by exactly 1 (to float rounding)
    e = model(x)
    view[-1] -= 1.0
    np.testing.assert_allclose(e - model(x), 1.0, rtol=0, atol=1e-5)
    impl = model._impl
    del model, impl
    assert np.isfinite(view).all()  # the view still owns a live model


def test_analytic_energies_match_closed_forms(rng):
    # float32 kernels against float64 formulas: rtol 1e-5 (a handful of float ops per term).
    x = rng.standard_normal((64, 3)).astype(np.float32)
    x64 = x.astype(np.float64)
    cases = [
        (cuebm.DoubleWellEnergy(2.0, 1.0, dim=3), 2.0 * ((x64**2 - 1) ** 2).sum(1),
         8.0 * x64 * (x64**2 - 1)),
        (cuebm.HarmonicEnergy(1.5, dim=3), 0.75 * (x64**2).sum(1), 1.5 * x64),
        (cuebm.RastriginEnergy(10.0, dim=3),
         30 + (x64**2 - 10 * np.cos(2 * np.pi * x64)).sum(1),
         2 * x64 + 20 * np.pi * np.sin(2 * np.pi * x64)),
    ]
    for energy, e_ref, g_ref in cases:
        np.testing.assert_allclose(energy(x), e_ref, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(energy.gradient(x), g_ref, rtol=1e-5, atol=1e-4)
    mean = np.array([0.5, -1.0], np.float32)
    cov = np.array([[2.0, 0.3], [0.3, 0.5]])
    g = cuebm.GaussianEnergy(mean, cov)
    d = x64[:, :2] - mean
    prec = np.linalg.inv(cov)
    np.testing.assert_allclose(g(x[:, :2]), 0.5 * np.einsum("ni,ij,nj->n", d, prec, d),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g.gradient(x[:, :2]), d @ prec, rtol=1e-5, atol=1e-5)


def test_analytic_energies_equal_the_cpp_results():
    for energy in [cuebm.RosenbrockEnergy(dim=4), cuebm.AckleyEnergy(dim=3),
                   cuebm.DoubleWellEnergy(dim=2)]:
        x, e, g = _cuebm.testing.energy_reference(energy._impl, 50, 11)
        np.testing.assert_array_equal(energy(x), e)
        np.testing.assert_array_equal(energy.gradient(x), g)


def test_energies_equal_the_command_line_eval(cli, tmp_path, rng):
    model = cuebm.MLPEnergy(2, (32, 16), "softplus", seed=8)
    model.save(tmp_path / "m.safetensors")
    x = rng.standard_normal((300, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    cli("eval", "--model", tmp_path / "m.safetensors", "-i", tmp_path / "x.npy", "-e",
        tmp_path / "e.npy", "-g", tmp_path / "g.npy", "--device", "cpu")
    np.testing.assert_array_equal(model(x), np.load(tmp_path / "e.npy"))
    np.testing.assert_array_equal(model.gradient(x), np.load(tmp_path / "g.npy"))


def test_model_files_round_trip(tmp_path):
    model = cuebm.MLPEnergy(3, (8, 4), "leaky_relu", seed=4)
    model.save(tmp_path / "m.safetensors")
    loaded = cuebm.MLPEnergy.load(tmp_path / "m.safetensors")
    assert loaded.widths == [3, 8, 4, 1] and loaded.activation == "leaky_relu"
    np.testing.assert_array_equal(loaded.parameters(), model.parameters())
    with pytest.raises(cuebm.IoError, match="missing.safetensors"):
        cuebm.MLPEnergy.load(tmp_path / "missing.safetensors")
    assert issubclass(cuebm.IoError, OSError)
    assert math.isfinite(loaded(np.zeros((1, 3), np.float32))[0])
