#!/usr/bin/python3
"""TorchEBM 0.3.17's HamiltonianMonteCarlo, timed on the tutorial MLP and a 2-D Gaussian.

Runs `chains` chains for `steps` HMC steps of 10 leapfrog steps (step size 0.01, identity
mass) on the tutorial's MLPEnergy 2-64-64-1 ReLU and on a 2-D unit Gaussian, best of `repeat`
runs, and prints JSON lines:
  {"info": {...}}
  {"name": "HMC/mlp:2-64-64-1_relu/batch:500/L:10", "impl": "torchebm",
   "proposals_per_second": ..., "seconds": ...}
  {"name": "HMC/gaussian/dim:2/batch:500/L:10", ...}
or {"error": why} (exit status 3) when TorchEBM cannot run here. Install as for
bench/torchebm_tutorial.py. A proposal is one HMC step of one chain (accepted or rejected).
"""

import argparse
import json
import os
import sys
import time


def fail(why):
    print(json.dumps({"error": why}), flush=True)
    sys.exit(3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int,
                        default=int(os.environ.get("CUEBM_BENCH_THREADS", "0") or 0))
    parser.add_argument("--chains", type=int, default=500)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        fail("torch is not importable")
    if importlib.util.find_spec("matplotlib") is None:
        from unittest import mock

        for name in ("matplotlib", "matplotlib.pyplot", "matplotlib.cm", "matplotlib.colors"):
            sys.modules.setdefault(name, mock.MagicMock())
    try:
        import torchebm
        from torchebm.core import BaseEnergyFunction
        from torchebm.samplers import HamiltonianMonteCarlo
    except Exception as exc:
        fail(f"torchebm is not importable ({type(exc).__name__}: {exc})")
    import torch
    from torch import nn

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    class MLPEnergy(BaseEnergyFunction):
        def __init__(self):
            super().__init__()
            self.network = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64),
                                         nn.ReLU(), nn.Linear(64, 1))

        def forward(self, x):
            return self.network(x).squeeze(-1)

    class GaussianEnergy(BaseEnergyFunction):
        def forward(self, x):
            return 0.5 * (x * x).sum(-1)

    print(json.dumps({"info": {"torchebm": getattr(torchebm, "__version__", "unknown"),
                               "torch": torch.__version__,
                               "threads": torch.get_num_threads()}}), flush=True)
    for label, energy in (("mlp:2-64-64-1_relu", MLPEnergy()), ("gaussian/dim:2", GaussianEnergy())):
        sampler = HamiltonianMonteCarlo(energy_function=energy, step_size=0.01, n_leapfrog_steps=10)
        x0 = torch.randn(args.chains, 2)
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            sampler.sample(x=x0.clone(), n_steps=args.steps)
            best = min(best, time.perf_counter() - start)
        print(json.dumps({"name": f"HMC/{label}/batch:{args.chains}/L:10", "impl": "torchebm",
                          "threads": torch.get_num_threads(), "seconds": best,
                          "proposals_per_second": args.chains * args.steps / best}), flush=True)


if __name__ == "__main__":
    main()
