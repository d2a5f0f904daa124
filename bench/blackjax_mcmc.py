#!/usr/bin/env python3
"""BlackJAX's MALA and HMC on JAX-CPU, timed on the tutorial MLP and a 2-D Gaussian.

The settings of bench/bench_mcmc.cpp: 500 chains x 50 steps; HMC with 10 leapfrog steps of
0.01 and identity mass (target exp(-E)); MALA at temperature sigma^2 = 0.01 with Langevin step
eta = 0.01 (BlackJAX's step on log p = -E / T is eta T). Chains are vmapped, steps run in one
jitted lax.scan; compile time is excluded; best of `repeat` runs. The thread count is set by
the caller (taskset); XLA's own pool follows the CPUs it may use. Prints JSON lines:
  {"info": {...}}
  {"name": "HMC/mlp:2-64-64-1_relu/batch:500/L:10", "impl": "blackjax", "proposals_per_second"...}
or {"error": why} (exit status 3) when JAX or BlackJAX is missing (pip install "jax[cpu]" blackjax).
"""

import argparse
import os

from peer_common import best_seconds, emit, fail


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=int, default=500)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        import jax
        import jax.numpy as jnp
        import blackjax
    except Exception as exc:
        fail(f"jax/blackjax not importable ({type(exc).__name__}: {exc})")

    key = jax.random.PRNGKey(0)

    def linear(key, n_in, n_out):  # PyTorch's default initialisation
        k1, k2 = jax.random.split(key)
        bound = 1.0 / n_in ** 0.5
        return (jax.random.uniform(k1, (n_out, n_in), minval=-bound, maxval=bound),
                jax.random.uniform(k2, (n_out,), minval=-bound, maxval=bound))

    keys = jax.random.split(key, 3)
    layers = [linear(keys[0], 2, 64), linear(keys[1], 64, 64), linear(keys[2], 64, 1)]

    def mlp_energy(x):
        h = x
        for i, (w, b) in enumerate(layers):
            h = h @ w.T + b
            if i < 2:
                h = jax.nn.relu(h)
        return h[0]

    def gaussian_energy(x):
        return 0.5 * jnp.sum(x * x)

    emit({"info": {"jax": jax.__version__, "blackjax": blackjax.__version__,
                   "cpus": len(os.sched_getaffinity(0))}})
    n, steps = args.chains, args.steps
    x0 = jax.random.normal(jax.random.PRNGKey(1), (n, 2))
    temperature = 0.01
    for label, energy in (("mlp:2-64-64-1_relu", mlp_energy), ("gaussian/dim:2", gaussian_energy)):
        kernels = {
            "HMC": (blackjax.hmc(lambda x: -energy(x), step_size=0.01,
                                 inverse_mass_matrix=jnp.ones(2), num_integration_steps=10),
                    f"HMC/{label}/batch:{n}/L:10"),
            "MALA": (blackjax.mala(lambda x: -energy(x) / temperature,
                                   step_size=0.01 * temperature),
                     f"MALA/{label}/batch:{n}"),
        }
        for kernel, name in kernels.values():
            states = jax.vmap(kernel.init)(x0)

            def run(key, states, kernel=kernel):
                def body(s, k):
                    s, _ = jax.vmap(kernel.step)(jax.random.split(k, n), s)
                    return s, None
                s, _ = jax.lax.scan(body, states, jax.random.split(key, steps))
                return s.position

            run = jax.jit(run)
            run(jax.random.PRNGKey(2), states).block_until_ready()  # compile
            best = best_seconds(
                lambda r: run(jax.random.PRNGKey(3 + r), states).block_until_ready(), args.repeat)
            emit({"name": name, "impl": "blackjax", "seconds": best,
                  "proposals_per_second": n * steps / best})


if __name__ == "__main__":
    main()
