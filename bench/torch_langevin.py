#!/usr/bin/python3
"""Plain PyTorch eager on cuEBM's benchmark workloads (the peer of bench_cuebm).

Workloads (names as bench_cuebm spells them, without the device suffix):
  Langevin/mlp:2-64-64-1_relu/batch:B/k:K   x <- x - eta dE/dx + sqrt(2 eta) sigma randn
  CD10/mlp:D-...-1_ACT/batch:B              one CD-10 iteration with Adam and clipping
  Energy/mlp:2-64-64-1_relu/rows:N          E(x) under no_grad
  Gradient/mlp:2-64-64-1_relu/rows:N        E(x) and dE/dx

Prints one JSON line per workload:
  {"name", "impl": "torch_eager", "device", "threads", "seconds_per_iter",
   "cpu_seconds_per_iter", "chain_steps_per_s", "items_per_s", "reps"}
and first a line {"info": ...} with the torch version and the BLAS torch actually loaded.
"""

import argparse
import math
import os
import re
import statistics
import sys
import time

from peer_common import add_threads_argument, emit, fail, set_torch_threads

try:
    import torch
    from torch import nn
except ImportError as exc:  # the caller reports it and carries on
    fail(f"torch is not importable: {exc}")

ETA, SIGMA = 0.1, 0.1  # the tutorial's sampler


def loaded_blas():
    """The BLAS shared objects mapped into this process (after a matmul forced loading)."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    libs = set()
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.split()[-1]
                if re.search(r"blas|mkl|blis|atlas", os.path.basename(path)):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


def blas_info():
    config = torch.__config__.show()
    match = re.search(r"BLAS_INFO=([^,\s]+)", config)
    alternative = "/etc/alternatives/libblas.so.3-x86_64-linux-gnu"
    return {
        "torch": torch.__version__,
        "blas_info": match.group(1) if match else "unknown",
        "libblas_alternative": os.path.realpath(alternative)
        if os.path.exists(alternative)
        else None,
        "blas_loaded": loaded_blas(),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }


def mlp(dim, hidden, act):
    layers, width = [], dim
    for h in hidden:
        layers += [nn.Linear(width, h), act()]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class MLPEnergy(nn.Module):
    """The tutorial's MLPEnergy: network(x).squeeze(-1)."""

    def __init__(self, dim, hidden=(64, 64), act=nn.ReLU):
        super().__init__()
        self.network = mlp(dim, hidden, act)

    def forward(self, x):
        return self.network(x).squeeze(-1)


def langevin(model, x, k, eta=ETA, sigma=SIGMA):
    noise = math.sqrt(2.0 * eta) * sigma
    for _ in range(k):
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(model(x).sum(), x)
        x = x - eta * g + noise * torch.randn_like(x)
    return x.detach()


def gaussian_mixture(n, device):
    """8 Gaussians of std 0.1 on a circle of radius 1.5 (the tutorial's data)."""
    theta = 2 * math.pi * torch.randint(0, 8, (n,)).float() / 8
    centres = 1.5 * torch.stack([torch.cos(theta), torch.sin(theta)], 1)
    return (centres + 0.1 * torch.randn(n, 2)).to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, min_time, min_reps=3, warmup=2):
    """Median wall seconds per call over at least min_reps calls and min_time seconds, and
    the process's CPU seconds per call (all threads; a machine shared with other programs
    inflates the first, not the second, at one thread)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times, start, cpu0 = [], time.perf_counter(), time.process_time()
    while len(times) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
        if len(times) >= 10000:
            break
    cpu = (time.process_time() - cpu0) / len(times)
    return statistics.median(times), cpu, len(times)


def label(dim, hidden, act_name):
    return "-".join(str(w) for w in (dim, *hidden, 1)) + "_" + act_name


def workloads(device):
    """(name, function, chain-steps per call, items per call) for every workload."""
    out = []
    tutorial = MLPEnergy(2).to(device)
    lab = label(2, (64, 64), "relu")
    lang = [(256, 10), (256, 100), (500, 500), (4096, 10), (4096, 100), (65536, 10), (65536, 100)]
    for batch, k in lang:
        x0 = torch.randn(batch, 2, device=device)
        out.append(
            (
                f"Langevin/mlp:{lab}/batch:{batch}/k:{k}",
                lambda x0=x0, k=k: langevin(tutorial, x0, k),
                batch * k,
                batch * k,
            )
        )
    cd_cases = [(2, (64, 64), nn.ReLU, "relu", 256, ETA)]
    for dim in (2, 32):
        for batch in (64, 256, 1024):
            cd_cases.append((dim, (128, 128), nn.SiLU, "silu", batch, 0.01))
    for dim, hidden, act, act_name, batch, eta in cd_cases:
        model = MLPEnergy(dim, hidden, act).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        data = (
            gaussian_mixture(8 * batch, device)
            if dim == 2
            else torch.randn(8 * batch, dim, device=device)
        )
        batches = list(data.split(batch))
        state = {"i": 0}

        def cd_step(model=model, opt=opt, batches=batches, state=state, eta=eta):
            pos = batches[state["i"] % len(batches)]
            state["i"] += 1
            opt.zero_grad()
            neg = langevin(model, pos, 10, eta, SIGMA)
            e_pos, e_neg = model(pos), model(neg)
            loss = (
                e_pos.mean()
                - e_neg.mean()
                + 0.001 * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
            )
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

        out.append(
            (
                f"CD10/mlp:{label(dim, hidden, act_name)}/batch:{batch}",
                cd_step,
                batch * 10,
                1,
            )
        )
    for rows in (4096, 65536):
        x = torch.randn(rows, 2, device=device)

        def energy(x=x):
            with torch.no_grad():
                return tutorial(x)

        def gradient(x=x):
            xg = x.detach().requires_grad_(True)
            e = tutorial(xg)
            (g,) = torch.autograd.grad(e.sum(), xg)
            return e.detach(), g

        out.append((f"Energy/mlp:{lab}/rows:{rows}", energy, 0, rows))
        out.append((f"Gradient/mlp:{lab}/rows:{rows}", gradient, 0, rows))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    add_threads_argument(
        parser, help="torch.set_num_threads (default: CUEBM_BENCH_THREADS, else torch's default)"
    )
    parser.add_argument(
        "--filter", default=".", help="regular expression on the workload names"
    )
    parser.add_argument(
        "--min-time", type=float, default=1.0, help="seconds per workload"
    )
    parser.add_argument("--list", action="store_true", help="list the workloads")
    args = parser.parse_args()

    if args.device == "cuda" and not torch.cuda.is_available():
        emit({"error": "--device cuda: torch sees no CUDA device"})
        sys.exit(4)
    set_torch_threads(torch, args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    info = blas_info()
    info.update(
        {
            "device": args.device,
            "threads": torch.get_num_threads(),
            "python": sys.version.split()[0],
        }
    )
    if args.device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    emit({"info": info})

    pattern = re.compile(args.filter)
    for name, fn, steps, items in workloads(device):
        if not pattern.search(name):
            continue
        if args.list:
            print(name)
            continue
        seconds, cpu_seconds, reps = timed(fn, device, args.min_time)
        record = {
            "name": name,
            "impl": "torch_eager",
            "device": args.device,
            "threads": torch.get_num_threads(),
            "seconds_per_iter": seconds,
            "cpu_seconds_per_iter": cpu_seconds,
            "items_per_s": items / seconds,
            "reps": reps,
        }
        if steps:
            record["chain_steps_per_s"] = steps / seconds
        emit(record)


if __name__ == "__main__":
    main()
