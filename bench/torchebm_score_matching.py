#!/usr/bin/python3
"""TorchEBM 0.3.17's score-matching losses, timed: loss(x) + backward() at batch 256.

The peer of bench/bench_score_matching.cpp: ScoreMatching (exact Hessian), SlicedScoreMatching
(5 Rademacher projections) and DenosingScoreMatching (sic; noise scale 0.01), TorchEBM's
defaults, on the tutorial MLPEnergy 2-64-64-1 ReLU and on 2-128-128-1 SiLU, the batch drawn
from the tutorial's 8 Gaussians. One iteration is what a training step spends on the loss:
zero the gradients, the loss, backward(). Prints JSON lines:
  {"info": {...}}
  {"name": "ScoreLoss/sm/mlp:2-64-64-1_relu/batch:256", "impl": "torchebm", "threads": T,
   "seconds_per_iter": median, "iters_per_second": 1 / median}
or {"error": why} (exit status 3) when TorchEBM cannot run here. Install as for
bench/torchebm_tutorial.py. Run with /usr/bin/python3 (where TorchEBM is installed).
"""

import argparse
import math

from peer_common import add_threads_argument, emit, import_torchebm, median_seconds, \
    set_torch_threads, torchebm_info


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_threads_argument(parser)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="time spent per case after warm-up (default 1)")
    args = parser.parse_args()
    (torchebm, BaseEnergyFunction, DenosingScoreMatching, ScoreMatching,
     SlicedScoreMatching) = import_torchebm(
        "torchebm.core.BaseEnergyFunction", "torchebm.losses.DenosingScoreMatching",
        "torchebm.losses.ScoreMatching", "torchebm.losses.SlicedScoreMatching")
    import torch
    from torch import nn

    set_torch_threads(torch, args.threads)
    torch.manual_seed(0)

    class MLPEnergy(BaseEnergyFunction):
        def __init__(self, hidden, act):
            super().__init__()
            self.network = nn.Sequential(nn.Linear(2, hidden), act(), nn.Linear(hidden, hidden),
                                         act(), nn.Linear(hidden, 1))

        def forward(self, x):
            return self.network(x).squeeze(-1)

    # The tutorial's data: 8 Gaussians of std 0.1 on a circle of radius 1.5.
    centers = torch.tensor([[1.5 * math.cos(2 * math.pi * k / 8), 1.5 * math.sin(2 * math.pi * k / 8)]
                            for k in range(8)])
    x = centers[torch.randint(0, 8, (args.batch,))] + 0.1 * torch.randn(args.batch, 2)

    torchebm_info(torchebm, torch)
    shapes = (("2-64-64-1_relu", 64, nn.ReLU), ("2-128-128-1_silu", 128, nn.SiLU))
    losses = (("sm", lambda e: ScoreMatching(e, hessian_method="exact")),
              ("ssm", lambda e: SlicedScoreMatching(e, n_projections=5,
                                                    projection_type="rademacher")),
              ("dsm", lambda e: DenosingScoreMatching(e, noise_scale=0.01)))
    for label, make in losses:
        for shape, hidden, act in shapes:
            energy = MLPEnergy(hidden, act)
            loss_fn = make(energy)

            def step():
                energy.zero_grad(set_to_none=True)
                loss = loss_fn(x)
                loss.backward()
                return loss

            median = median_seconds(step, args.seconds)
            emit({"name": f"ScoreLoss/{label}/mlp:{shape}/batch:{args.batch}",
                  "impl": "torchebm", "threads": torch.get_num_threads(),
                  "seconds_per_iter": median, "iters_per_second": 1.0 / median})


if __name__ == "__main__":
    main()
