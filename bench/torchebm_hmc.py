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

from peer_common import add_threads_argument, best_seconds, emit, import_torchebm, \
    set_torch_threads, torchebm_info


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_threads_argument(parser)
    parser.add_argument("--chains", type=int, default=500)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torchebm, BaseEnergyFunction, HamiltonianMonteCarlo = import_torchebm(
        "torchebm.core.BaseEnergyFunction", "torchebm.samplers.HamiltonianMonteCarlo")
    import torch
    from torch import nn

    set_torch_threads(torch, args.threads)
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

    torchebm_info(torchebm, torch)
    for label, energy in (("mlp:2-64-64-1_relu", MLPEnergy()), ("gaussian/dim:2", GaussianEnergy())):
        sampler = HamiltonianMonteCarlo(energy_function=energy, step_size=0.01, n_leapfrog_steps=10)
        x0 = torch.randn(args.chains, 2)
        best = best_seconds(lambda _: sampler.sample(x=x0.clone(), n_steps=args.steps),
                            args.repeat)
        emit({"name": f"HMC/{label}/batch:{args.chains}/L:10", "impl": "torchebm",
              "threads": torch.get_num_threads(), "seconds": best,
              "proposals_per_second": args.chains * args.steps / best})


if __name__ == "__main__":
    main()
