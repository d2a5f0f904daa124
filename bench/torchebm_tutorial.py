#!/usr/bin/python3
"""TorchEBM's Gaussian-mixture tutorial loop, timed with TorchEBM's own classes.

Runs 200 iterations of CD-10 at batch 256 (MLPEnergy 2-64-64-1 ReLU, LangevinDynamics with
step_size 0.1 and noise_scale 0.1, Adam lr 1e-3, clip_grad_norm_ 1.0, DataLoader over a
GaussianMixtureDataset) and samples 500 chains x 500 steps with the same sampler.

Prints JSON lines: {"info": ...}, then
  {"name": "CD10/mlp:2-64-64-1_relu/batch:256", "impl": "torchebm", "seconds_per_iter", ...}
  {"name": "Langevin/mlp:2-64-64-1_relu/batch:500/k:500", "impl": "torchebm", ...}
or {"error": why} (exit status 3) when TorchEBM cannot run here (--check tests only that).
Install (torch from Debian, as root: apt-get install -y python3-torch):
  /usr/bin/python3 -m pip install --break-system-packages --no-deps torchebm==0.3.17
"""

import argparse
import statistics
import time

from peer_common import add_threads_argument, emit, fail, import_torchebm, set_torch_threads, \
    torchebm_info

INSTALL = "/usr/bin/python3 -m pip install --break-system-packages --no-deps torchebm==0.3.17"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    add_threads_argument(parser)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--no-sample", action="store_true", help="skip the 500 x 500 sampling")
    parser.add_argument(
        "--check", action="store_true", help="only check that TorchEBM imports (exit status)"
    )
    args = parser.parse_args()

    (
        torchebm,
        BaseEnergyFunction,
        GaussianMixtureDataset,
        ContrastiveDivergence,
        LangevinDynamics,
    ) = import_torchebm(
        "torchebm.core.BaseEnergyFunction",
        "torchebm.datasets.GaussianMixtureDataset",
        "torchebm.losses.ContrastiveDivergence",
        "torchebm.samplers.LangevinDynamics",
        install_hint=f"; install it with {INSTALL}",
    )
    if args.check:
        emit({"info": {"torchebm": getattr(torchebm, "__version__", "unknown")}})
        return
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    if args.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: torch sees no CUDA device")
    set_torch_threads(torch, args.threads)
    device = torch.device(args.device)
    torch.manual_seed(42)

    class MLPEnergy(BaseEnergyFunction):
        """The tutorial's energy: a 2-64-64-1 ReLU network."""

        def __init__(self, input_dim=2, hidden_dim=64):
            super().__init__()
            self.network = nn.Sequential(
                nn.Linear(input_dim, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, 1),
            )

        def forward(self, x):
            return self.network(x).squeeze(-1)

    torchebm_info(torchebm, torch, device=args.device)

    batch_size = 256
    model = MLPEnergy().to(device)
    dataset = GaussianMixtureDataset(
        n_samples=10000, n_components=8, std=0.1, radius=1.5, device=device, seed=42
    )
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
    sampler = LangevinDynamics(
        energy_function=model, step_size=0.1, noise_scale=0.1, device=device
    )
    loss_fn = ContrastiveDivergence(
        energy_function=model, sampler=sampler, k_steps=10, persistent=False, device=device
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def batches():
        while True:
            yield from loader

    stream = batches()

    def iteration():
        data = next(stream)
        optimizer.zero_grad()
        loss, _ = loss_fn(data)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()

    for _ in range(args.warmup):
        iteration()
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    start, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        iteration()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    cpu_total = time.process_time() - cpu0
    emit(
        {
            "name": "CD10/mlp:2-64-64-1_relu/batch:256",
            "impl": "torchebm",
            "device": args.device,
            "threads": torch.get_num_threads(),
            "seconds_per_iter": total / args.iterations,
            "median_seconds_per_iter": statistics.median(times),
            "cpu_seconds_per_iter": cpu_total / args.iterations,
            "items_per_s": args.iterations / total,
            "chain_steps_per_s": args.iterations * batch_size * 10 / total,
            "reps": args.iterations,
        }
    )

    if not args.no_sample:
        n, k = 500, 500
        sampler.sample(dim=2, n_steps=10, n_samples=n)  # warm-up
        t0, cpu0 = time.perf_counter(), time.process_time()
        sampler.sample(dim=2, n_steps=k, n_samples=n)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        cpu_seconds = time.process_time() - cpu0
        emit(
            {
                "name": f"Langevin/mlp:2-64-64-1_relu/batch:{n}/k:{k}",
                "impl": "torchebm",
                "device": args.device,
                "threads": torch.get_num_threads(),
                "seconds_per_iter": seconds,
                "cpu_seconds_per_iter": cpu_seconds,
                "items_per_s": n * k / seconds,
                "chain_steps_per_s": n * k / seconds,
                "reps": 1,
            }
        )


if __name__ == "__main__":
    main()
