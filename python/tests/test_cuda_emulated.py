"""The CUDA-tensor path of the bindings (the stream-ordered API, python/src/stream_api.cpp: what
cuebm.torch runs on torch CUDA tensors) on "CUDA tensors" from a torch-like DLPack producer.

No torch CUDA build is needed: testing.cuda_upload / cuda_empty (python/src/testing_cuda.cpp)
allocate with cudaMalloc, and TorchLikeCudaTensor hands that memory over as torch.Tensor does
(__dlpack_device__() = (kDLCUDA, 0), __dlpack__(stream=..., max_version=...)). The module runs
on the emulated GPU (configure with -DCUEBM_CUDA_EMULATION=ON -DCUEBM_BUILD_PYTHON=ON: every
CUDA thread a fiber, device memory the emulator's cudaMalloc; tests/cuda_emulation/README.md) or
on a real one, and is skipped when the loaded module has no CUDA device.

Tolerances are those of the C++ CUDA-vs-CPU tests (tests/test_cuda.cpp's header): float32 sums
in the same order on both backends differ only through FMA contraction and the device's
expf/tanhf/erff (<= 2 ulp), so |d| <= 1e-4 + 1e-4 |ref| is > 10x the expected error for O(1)
outputs; 10 Langevin steps with eta = 0.01 amplify a per-step difference by ~1.1 at most. For
the kinked activations (ReLU, LeakyReLU) a pre-activation within rounding of 0 may take the
other branch on one backend, so up to max(1, rows / 1000) rows may exceed the tight bound but
must stay within 0.05 + 0.05 |ref|.
"""

import os

import numpy as np
import pytest

from cuebm import _cuebm

testing = _cuebm.testing
HAS_CUDA_HELPERS = hasattr(testing, "cuda_upload")
EMULATED = HAS_CUDA_HELPERS and testing.cuda_emulated

HAS_DEVICE = _cuebm.built_with_cuda() and _cuebm.cuda_device_count() > 0 and HAS_CUDA_HELPERS
WHY_NOT = ("needs a module built with the CUDA backend (emulated or real) and a CUDA device: "
           + (_cuebm.cuda_unavailable_reason() or "built without CUDA"))
# CI's emulated-GPU run sets CUEBM_REQUIRE_CUDA=1: there a skip would hide a broken build.
if os.environ.get("CUEBM_REQUIRE_CUDA") == "1" and not HAS_DEVICE:
    pytest.fail("CUEBM_REQUIRE_CUDA=1 but this module " + WHY_NOT[6:], pytrace=False)

pytestmark = pytest.mark.skipif(not HAS_DEVICE, reason=WHY_NOT)

KDL_CUDA = 2
ACTIVATIONS = ["relu", "silu", "tanh", "softplus", "leaky_relu", "gelu"]
KINKED = {"relu", "leaky_relu"}


class TorchLikeCudaTensor:
    """The DLPack side of a torch CUDA tensor: __dlpack_device__() is (kDLCUDA, 0) and
    __dlpack__ takes torch's keywords and returns a capsule over the device memory. `exports`
    records the `stream` each export was asked for: a consumer passing its stream asks the
    producer to order its pending work before that stream (torch records an event on its
    current stream and makes `stream` wait for it); None asks for nothing."""

    def __init__(self, device_array, shape):
        self.array = device_array  # a testing.cuda_* array owning cudaMalloc memory
        self.shape = tuple(shape)
        self.exports = []

    def __dlpack_device__(self):
        return (KDL_CUDA, 0)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise BufferError("no cross-device export")
        if copy:
            raise BufferError("copy=True is not supported")
        self.exports.append(stream)
        if max_version is None:
            return self.array.__dlpack__()
        return self.array.__dlpack__(max_version=max_version)


def cuda_tensor(x, ld=0):
    x = np.ascontiguousarray(x, np.float32)
    return TorchLikeCudaTensor(testing.cuda_upload(x, ld), x.shape)


def cuda_empty(*shape, dtype="float32"):
    return TorchLikeCudaTensor(testing.cuda_empty(list(shape), dtype), shape)


def download(t, stream=0):
    return testing.cuda_download(t.array, stream)


def assert_close_rows(got, ref, kinked, what):
    """tests/test_cuda.cpp's expect_close_rows: the module docstring's bounds."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, what
    assert not np.isnan(got).any(), f"{what}: NaN at {np.argwhere(np.isnan(got))[:5].tolist()}"
    d = np.abs(got - ref)
    tight = d <= 1e-4 + 1e-4 * np.abs(ref)
    bad_rows = ~tight.reshape(len(ref), -1).all(axis=1)
    worst = np.unravel_index(np.argmax(d), d.shape)
    detail = f"{what}: worst |d| {d[worst]:.3g} at {worst} (got {got[worst]}, ref {ref[worst]})"
    if not kinked:
        assert not bad_rows.any(), detail
        return
    assert (d <= 0.05 + 0.05 * np.abs(ref)).all(), detail
    assert bad_rows.sum() <= max(1, len(ref) // 1000), detail


def make_model(activation, dim=3, hidden=(32, 16), seed=11):
    mlp = _cuebm.Mlp(dim, list(hidden), activation, seed)
    return mlp, list(mlp.widths), cuda_tensor(np.array(mlp.parameters()))


@pytest.fixture
def stream():
    """A non-blocking stream: neither it nor the legacy default stream waits for the other, so
    work the binding enqueued on the wrong stream is not ordered before the reads below."""
    s = testing.cuda_stream_create(True)
    yield s
    testing.cuda_stream_destroy(s)


def energy_workspace(widths, activation, n):
    size = _cuebm.cuda_mlp_energy_workspace_size(widths, activation, n)
    return cuda_empty(max(size, 1), dtype="uint8")


def test_the_producer_is_read_as_cuda_memory_and_refused_by_the_cpu_path():
    x = cuda_tensor(np.arange(12, dtype=np.float32).reshape(4, 3))
    assert x.__dlpack_device__() == (KDL_CUDA, 0)
    # nanobind imports the producer through __dlpack__ and sees device memory.
    assert testing.cuda_is_device_memory(x)
    assert len(x.exports) == 1
    np.testing.assert_array_equal(download(x), np.arange(12, dtype=np.float32).reshape(4, 3))
    mlp, _, _ = make_model("tanh")
    with pytest.raises(ValueError, match="not in CPU memory \\(DLPack device type 2\\)"):
        mlp.energy(x)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_energy_and_gradient_stay_on_the_device_and_equal_the_cpu(activation, stream):
    n = 97  # a partial last block of rows
    mlp, widths, params = make_model(activation)
    x_host = _cuebm.gaussian_initial_state(n, widths[0], 5)
    x, e, grad = cuda_tensor(x_host), cuda_empty(n), cuda_empty(n, widths[0])
    ws = energy_workspace(widths, activation, n)
    _cuebm.cuda_mlp_energy(widths, activation, params, x, e, grad, ws, stream)
    testing.cuda_stream_synchronize(stream)
    for out in (e, grad):  # the outputs are the caller's device buffers, written in place
        assert out.__dlpack_device__() == (KDL_CUDA, 0)
        assert testing.cuda_is_device_memory(out)
    kinked = activation in KINKED
    assert_close_rows(download(e)[:, None], mlp.energy(x_host)[:, None], kinked, "energy")
    assert_close_rows(download(grad), mlp.gradient(x_host), kinked, "gradient")
    # Either output alone, and the input left as it was.
    e2, grad2 = cuda_empty(n), cuda_empty(n, widths[0])
    _cuebm.cuda_mlp_energy(widths, activation, params, x, e2, None, ws, stream)
    _cuebm.cuda_mlp_energy(widths, activation, params, x, None, grad2, ws, stream)
    testing.cuda_stream_synchronize(stream)
    np.testing.assert_array_equal(download(e2), download(e))
    np.testing.assert_array_equal(download(grad2), download(grad))
    np.testing.assert_array_equal(download(x), x_host)


def test_rows_with_a_leading_dimension_leave_the_padding_alone(stream):
    n, activation = 40, "silu"
    mlp, widths, params = make_model(activation)
    d = widths[0]
    x_host = _cuebm.gaussian_initial_state(n, d, 6)
    x = cuda_tensor(x_host, ld=d + 5)
    grad = cuda_tensor(np.zeros((n, d), np.float32), ld=d + 2)
    e = cuda_empty(n)
    ws = energy_workspace(widths, activation, n)
    _cuebm.cuda_mlp_energy(widths, activation, params, x, e, grad, ws, stream)
    testing.cuda_stream_synchronize(stream)
    assert_close_rows(download(e)[:, None], mlp.energy(x_host)[:, None], False, "energy")
    assert_close_rows(download(grad), mlp.gradient(x_host), False, "gradient")
    # The padding (NaN from cuda_upload) was neither read (outputs would be NaN) nor written.
    for t, ld in ((x, d + 5), (grad, d + 2)):
        raw = testing.cuda_raw(t.array)  # (n - 1) * ld + d floats: the last row unpadded
        assert raw.size == (n - 1) * ld + d
        padded = np.concatenate([raw, np.full(ld - d, np.nan, np.float32)]).reshape(n, ld)
        assert np.isnan(padded[:, d:]).all()


def langevin(widths, activation, params, x, stream, n_steps, **keys):
    size = _cuebm.cuda_langevin_chain_workspace_size(widths, activation, x.shape[0], n_steps,
                                                     x.shape[1])
    ws = cuda_empty(max(size, 1), dtype="uint8")
    _cuebm.cuda_langevin_chain(widths, activation, params, x, ws, stream, 0.01, 0.1, n_steps,
                               **keys)
    return ws  # alive until the caller has synchronised the stream


@pytest.mark.parametrize("activation", ["silu", "tanh", "gelu", "relu"])
def test_langevin_runs_in_place_on_the_device_and_equals_the_cpu(activation, stream):
    n, steps = 64, 10
    mlp, widths, params = make_model(activation)
    x0 = _cuebm.gaussian_initial_state(n, widths[0], 8)
    ref = _cuebm.langevin_sample(mlp, x0, n, 0.01, 0.1, steps, seed=21)["samples"]
    x = cuda_tensor(x0)
    ws = langevin(widths, activation, params, x, stream, steps, seed=21)
    testing.cuda_stream_synchronize(stream)
    del ws
    assert testing.cuda_is_device_memory(x)
    out = download(x)
    assert_close_rows(out, ref, activation in KINKED, "samples")
    assert not np.allclose(out, x0, atol=1e-3)  # the chains moved

    # The same chains continued (step_offset) and split by rows (first_chain): the noise keys
    # (seed, first_chain + i, step_offset + t) are passed through.
    y = cuda_tensor(x0)
    ws1 = langevin(widths, activation, params, y, stream, 4, seed=21)
    ws2 = langevin(widths, activation, params, y, stream, steps - 4, seed=21, step_offset=4)
    tail = cuda_tensor(x0[20:])
    ws3 = langevin(widths, activation, params, tail, stream, steps, seed=21, first_chain=20)
    testing.cuda_stream_synchronize(stream)
    del ws1, ws2, ws3
    assert_close_rows(download(y), ref, activation in KINKED, "two runs continued")
    assert_close_rows(download(tail), ref[20:], activation in KINKED, "rows 20: (first_chain)")


def test_the_stream_argument_orders_the_work_and_nothing_synchronises(stream):
    """The bindings only enqueue on the stream they are given (stream_api.hpp: no call
    synchronises): the results appear once that stream is synchronised, and a copy on the same
    stream is ordered after them. The DLPack imports ask the producer for no stream ordering
    (stream=None): the stream handle is what orders the work, so the caller passes the stream
    the tensors were produced on (cuebm.torch passes torch's current stream)."""
    n, activation = 33, "tanh"
    mlp, widths, params = make_model(activation)
    x_host = _cuebm.gaussian_initial_state(n, widths[0], 9)
    x, e = cuda_tensor(x_host), cuda_empty(n)
    ws = energy_workspace(widths, activation, n)
    _cuebm.cuda_mlp_energy(widths, activation, params, x, e, None, ws, stream)
    if EMULATED:
        # On the emulated GPU a stream's work runs when something waits for it. A read on the
        # legacy stream, which a non-blocking stream is not ordered with, still sees the 0xff
        # fill of cuda_empty: the work is on `stream`, and the call synchronised nothing. (On
        # a real GPU this read would race with the kernel, so it is not made there.)
        assert np.isnan(download(e, 0)).all(), "the energies ran before `stream` was waited for"
    # A copy enqueued on the same stream comes after the energy kernels.
    assert_close_rows(download(e, stream)[:, None], mlp.energy(x_host)[:, None], False, "energy")

    x2 = cuda_tensor(x_host)
    ws2 = langevin(widths, activation, params, x2, stream, 3, seed=2)
    if EMULATED:
        np.testing.assert_array_equal(download(x2, 0), x_host)  # not yet run
    ref = _cuebm.langevin_sample(mlp, x_host, n, 0.01, 0.1, 3, seed=2)["samples"]
    assert_close_rows(download(x2, stream), ref, False, "samples")
    del ws, ws2
    for t in (params, x, e, x2):
        assert t.exports and all(s is None for s in t.exports), t.exports


def test_device_arguments_are_checked(stream):
    mlp, widths, params = make_model("silu")
    n = 4
    x, e = cuda_tensor(np.zeros((n, widths[0]), np.float32)), cuda_empty(n)
    ws = energy_workspace(widths, "silu", n)
    with pytest.raises(ValueError, match="x must be in CUDA device memory"):
        _cuebm.cuda_mlp_energy(widths, "silu", params, np.zeros((n, widths[0]), np.float32), e,
                               None, ws, stream)
    with pytest.raises(ValueError, match="workspace must be in CUDA device memory"):
        _cuebm.cuda_mlp_energy(widths, "silu", params, x, e, None, np.zeros(1 << 20, np.uint8),
                               stream)
    with pytest.raises(ValueError, match="params holds"):
        _cuebm.cuda_mlp_energy(widths, "silu", cuda_empty(5), x, e, None, ws, stream)
    with pytest.raises(ValueError, match="columns|must be \\(n, 3\\)"):
        _cuebm.cuda_mlp_energy(widths, "silu", params, cuda_empty(n, 2), e, None, ws, stream)
