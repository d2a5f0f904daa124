#!/usr/bin/python3
"""The cost of calling cuEBM from Python, and the tutorial with TorchEBM vs with cuEBM.

1. Overhead of one call: the same call timed in C++ (cuebm._cuebm.testing.time_*: a loop
   inside C++ on the same arrays) and from Python through the public API (NumPy and torch
   inputs), best of --repeats runs of --calls calls. overhead = Python - C++ per call.
2. The Gaussian-mixture tutorial: CD-10 iterations (batch 256) and 500 x 500 Langevin
   sampling with cuEBM from Python (examples/python/gaussian_mixture.py's loop) against
   TorchEBM (bench/torchebm_tutorial.py, when torchebm is importable), in one run.

Prints one JSON object per line. Run with the package installed (pip install .) or with
python/ on PYTHONPATH next to a built module.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

import cuebm
from cuebm import _cuebm

HERE = pathlib.Path(__file__).resolve().parent


def best_per_call(fn, calls, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def emit(**row):
    print(json.dumps(row), flush=True)


def call_overhead(calls, repeats):
    model = cuebm.MLPEnergy(2, (64, 64), "relu", seed=0)
    sampler = cuebm.LangevinDynamics(model, 0.1, 0.1)
    try:
        import torch
    except ImportError:
        torch = None
    for n in (1, 256):
        x = np.random.default_rng(0).standard_normal((n, 2)).astype(np.float32)
        cpp = min(_cuebm.testing.time_energy(model._impl, x, calls) for _ in range(repeats))
        cases = {"MLPEnergy(x) numpy": lambda: model(x),
                 "_cuebm.Mlp.energy numpy": lambda: model._impl.energy(x)}
        if torch is not None:
            t = torch.from_numpy(x)
            cases["MLPEnergy(x) torch"] = lambda: model(t)
        for name, fn in cases.items():
            py = best_per_call(fn, calls, repeats)
            emit(call=name, rows=n, cpp_us=cpp * 1e6, python_us=py * 1e6,
                 overhead_us=(py - cpp) * 1e6)
        cpp = min(_cuebm.testing.time_langevin(model._impl, x, 1, calls // 10)
                  for _ in range(repeats))
        py = best_per_call(lambda: sampler.sample(x=x, n_steps=1), calls // 10, repeats)
        emit(call="LangevinDynamics.sample(n_steps=1) numpy", rows=n, cpp_us=cpp * 1e6,
             python_us=py * 1e6, overhead_us=(py - cpp) * 1e6)


def tutorial_cuebm(iterations):
    data = cuebm.GaussianMixtureDataset(n_samples=10000, n_components=8, std=0.1, radius=1.5,
                                        seed=42).get_data()
    model = cuebm.MLPEnergy(2, (64, 64), "relu", seed=0)
    sampler = cuebm.LangevinDynamics(model, step_size=0.1, noise_scale=0.1)
    loss_fn = cuebm.ContrastiveDivergence(model, sampler, k_steps=10, lr=1e-3)
    loader = cuebm.DataLoader(data, batch_size=256)
    batches = (b for e in range(10**6) for b in loader.epoch(e))
    for _ in range(10):
        loss_fn.step(next(batches))
    t0 = time.perf_counter()
    for _ in range(iterations):
        loss_fn.step(next(batches))
    cd = (time.perf_counter() - t0) / iterations
    sampler.sample(dim=2, n_steps=10, n_samples=500)
    t0 = time.perf_counter()
    sampler.sample(dim=2, n_steps=500, n_samples=500)
    sampling = time.perf_counter() - t0
    return cd, sampling


def tutorial_torchebm(iterations, threads):
    script = HERE / "torchebm_tutorial.py"
    r = subprocess.run([sys.executable, str(script), "--iterations", str(iterations),
                        "--threads", str(threads)], capture_output=True, text=True)
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    if r.returncode != 0 or any("error" in row for row in rows):
        return None, None, rows
    cd = next(row for row in rows if row.get("name", "").startswith("CD10"))
    lang = next(row for row in rows if row.get("name", "").startswith("Langevin"))
    return cd["seconds_per_iter"], lang["seconds_per_iter"], rows


def thread_counts():
    """1 and all cores: each side is compared at its fastest (a tiny MLP in PyTorch is often
    fastest on one thread)."""
    return sorted({1, os.cpu_count() or 1})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--no-torchebm", action="store_true")
    args = parser.parse_args()
    emit(info={"cuebm": cuebm.__version__, "threads": cuebm.num_threads(),
               "load1": os.getloadavg()[0]})
    call_overhead(args.calls, args.repeats)
    best = {}
    default_threads = cuebm.num_threads()
    for threads in thread_counts():
        cuebm.set_num_threads(threads)
        cd, sampling = tutorial_cuebm(args.iterations)
        emit(workload="tutorial CD-10 iteration, batch 256", impl="cuebm (Python)",
             threads=threads, seconds_per_iter=cd)
        emit(workload="tutorial Langevin 500 chains x 500 steps", impl="cuebm (Python)",
             threads=threads, seconds=sampling)
        best["cuebm"] = min(best.get("cuebm", (cd, sampling)), (cd, sampling))
    cuebm.set_num_threads(default_threads)
    if args.no_torchebm:
        return
    for threads in thread_counts():
        t_cd, t_sampling, rows = tutorial_torchebm(args.iterations, threads)
        if t_cd is None:
            emit(workload="tutorial", impl="torchebm", threads=threads, skipped=rows)
            return
        emit(workload="tutorial CD-10 iteration, batch 256", impl="torchebm", threads=threads,
             seconds_per_iter=t_cd)
        emit(workload="tutorial Langevin 500 chains x 500 steps", impl="torchebm",
             threads=threads, seconds=t_sampling)
        best["torchebm"] = min(best.get("torchebm", (t_cd, t_sampling)), (t_cd, t_sampling))
    (cd, sampling), (t_cd, t_sampling) = best["cuebm"], best["torchebm"]
    emit(workload="tutorial CD-10 iteration, batch 256", best_of_threads=True,
         cuebm_seconds_per_iter=cd, torchebm_seconds_per_iter=t_cd, speedup=t_cd / cd)
    emit(workload="tutorial Langevin 500 chains x 500 steps", best_of_threads=True,
         cuebm_seconds=sampling, torchebm_seconds=t_sampling, speedup=t_sampling / sampling)

if __name__ == "__main__":
    main()
