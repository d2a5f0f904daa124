"""Reference counting (no leak over 10,000 calls), error mapping and the GIL."""

import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

import cuebm
from cuebm import _cuebm
from conftest import torch_or_skip


def growth_over(calls, fn):
    """Bytes still allocated by Python after `calls` calls (after a warm-up)."""
    for _ in range(100):
        fn()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(calls):
        fn()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "filename"))


def test_no_leak_over_10000_calls(rng):
    model = cuebm.MLPEnergy(2, (16, 16))
    x = rng.standard_normal((8, 2)).astype(np.float32)
    x64 = x.astype(np.float64)
    refs = sys.getrefcount(x)
    # A leaked result array would be at least 32 bytes per call: 320 kB over 10,000 calls.
    # 64 kB of slack covers tracemalloc's own bookkeeping.
    assert growth_over(10_000, lambda: model(x)) < 64_000
    assert growth_over(10_000, lambda: model.gradient(x64)) < 64_000
    sampler = cuebm.LangevinDynamics(model, 0.01, 0.1)
    assert growth_over(10_000, lambda: sampler.sample(x=x, n_steps=1)) < 64_000
    assert sys.getrefcount(x) == refs  # the input is not kept


def test_no_leak_with_torch_inputs():
    torch = torch_or_skip()
    model = cuebm.MLPEnergy(2, (16, 16))
    t = torch.randn(8, 2)
    refs = sys.getrefcount(t)
    assert growth_over(10_000, lambda: model(t)) < 64_000
    assert sys.getrefcount(t) == refs


def test_results_own_their_memory(rng):
    model = cuebm.MLPEnergy(2, (8, 8))
    e = model(rng.standard_normal((4, 2)).astype(np.float32))
    del model
    assert e.shape == (4,) and np.isfinite(e).all()


@pytest.mark.parametrize("kind,python_type,base", [
    ("invalid_argument", cuebm.InvalidArgument, ValueError),
    ("numerical", cuebm.NumericalError, FloatingPointError),
    ("cuda", cuebm.CudaError, RuntimeError),
    ("io", cuebm.IoError, OSError),
])
def test_cpp_exceptions_map_to_python_ones_with_the_message(kind, python_type, base):
    with pytest.raises(python_type) as err:
        _cuebm.testing.throw_error(kind, f"message of {kind}: 1.5")
    assert isinstance(err.value, base) and isinstance(err.value, cuebm.Error)
    assert str(err.value) == f"message of {kind}: 1.5"


def test_compute_releases_the_gil():
    # A thread counting while the main thread samples: with the GIL held it could not run.
    model = cuebm.MLPEnergy(2, (64, 64))
    sampler = cuebm.LangevinDynamics(model, 0.01, 0.1)
    ticks, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    thread = threading.Thread(target=count)
    thread.start()
    time.sleep(0.01)
    start = ticks[0]
    sampler.sample(dim=2, n_steps=3000, n_samples=256, chunk_steps=3000)  # one chunk, ~0.3 s
    progressed = ticks[0] - start
    stop.set()
    thread.join()
    assert progressed >= 5
