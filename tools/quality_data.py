"""The toy datasets of datasets.hpp with their default parameters, in NumPy, for the quality
table: points drawn from each dataset's distribution (numpy's generator, so not the same draws
as the library's Philox streams) for the gallery, mode centres, and H(data) where the density
is known in closed form, which turns the test NLL into KL(data || model).

H(data) is estimated by Monte Carlo, mean of -log p over points drawn from p, with its standard
error. two_moons and grid are finite Gaussian mixtures (their centres are deterministic
linspaces), circle is a ring whose angle is uniform (a mixture of 4096 equally spaced Gaussians
is exact to far below the Monte Carlo error: spacing 0.0015 against noise 0.05), checkerboard is
a uniform density on 32 unit squares convolved with N(0, 0.01^2 I) (products of normal CDF
differences). swiss_roll is normalised by the moments of its own sample and pinwheel has a
two-dimensional latent: no closed form here, so their KL is n/a.
"""

import math

import numpy as np

TUTORIAL_MIXTURE = dict(n=500, components=4, std=0.1, radius=1.5)


def mixture_centres(name):
    """(centres K x 2, std) of the mixtures with modes, None for the rest."""
    if name == "gaussian_mixture":
        k, r = TUTORIAL_MIXTURE["components"], TUTORIAL_MIXTURE["radius"]
        a = 2 * np.pi * np.arange(k) / k
        return np.stack([r * np.cos(a), r * np.sin(a)], 1), TUTORIAL_MIXTURE["std"]
    if name == "eight_gaussians":
        d = 1 / np.sqrt(2)
        c = [(1, 0), (-1, 0), (0, 1), (0, -1), (d, d), (d, -d), (-d, d), (-d, -d)]
        return 2.0 * np.array(c), 0.02
    return None


def _moons_centres(n=2000):
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    return np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                           np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], 1)])


def _ring_centres(m=4096, radius=1.0):
    a = 2 * np.pi * (np.arange(m) + 0.5) / m
    return radius * np.stack([np.cos(a), np.sin(a)], 1)


def _grid_centres(m=10, rng=1.0):
    g = np.linspace(-rng, rng, m)
    return np.stack([np.tile(g, m), np.repeat(g, m)], 1)


def sample(name, n, rng):
    """n points from the dataset's distribution (default parameters)."""
    if name in ("gaussian_mixture", "eight_gaussians"):
        c, s = mixture_centres(name)
        return c[rng.integers(len(c), size=n)] + s * rng.standard_normal((n, 2))
    if name == "two_moons":
        c = _moons_centres()
        return c[rng.integers(len(c), size=n)] + 0.05 * rng.standard_normal((n, 2))
    if name == "circle":
        a = 2 * np.pi * rng.random(n)
        return np.stack([np.cos(a), np.sin(a)], 1) + 0.05 * rng.standard_normal((n, 2))
    if name == "grid":
        c = _grid_centres()
        return c[rng.integers(len(c), size=n)] + 0.01 * rng.standard_normal((n, 2))
    if name == "checkerboard":
        out = []
        while sum(len(o) for o in out) < n:
            p = rng.uniform(-4, 4, size=(2 * n, 2))
            out.append(p[(np.floor(p[:, 0]) + np.floor(p[:, 1])) % 2 != 0])
        return np.concatenate(out)[:n] + 0.01 * rng.standard_normal((n, 2))
    if name == "swiss_roll":
        t = 3.0 * np.pi * (1 + 2 * rng.random(n))
        xy = np.stack([t * np.cos(t), t * np.sin(t)], 1) + 0.05 * rng.standard_normal((n, 2))
        xy -= xy.mean(0)
        return xy / (2 * xy.std(0, ddof=1).mean())
    if name == "pinwheel":
        c = rng.integers(5, size=n)
        t = np.sqrt(rng.random(n))
        theta = 2 * np.pi * c / 5 + 5.0 * t + 0.1 * rng.standard_normal(n)
        xy = np.stack([2.0 * t * np.cos(theta), 2.0 * t * np.sin(theta)], 1)
        return xy + 0.05 * rng.standard_normal((n, 2))
    raise ValueError("unknown dataset " + name)


def _log_mixture(x, centres, std):
    """log density at x of the equal-weight mixture of N(centre, std^2 I), in chunks."""
    out = np.empty(len(x))
    for i in range(0, len(x), 512):
        d2 = ((x[i:i + 512, None, :] - centres[None]) ** 2).sum(-1)
        a = -d2 / (2 * std * std)
        m = a.max(1, keepdims=True)
        out[i:i + 512] = (m[:, 0] + np.log(np.exp(a - m).sum(1)) - math.log(len(centres))
                          - math.log(2 * math.pi * std * std))
    return out


def _log_checkerboard(x, std=0.01):
    cdf = np.frompyfunc(lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2))), 1, 1)
    p = np.zeros(len(x))
    for i in range(-4, 4):
        for j in range(-4, 4):
            if (i + j) % 2 == 0:
                continue
            px = (cdf((x[:, 0] - i) / std) - cdf((x[:, 0] - i - 1) / std)).astype(float)
            py = (cdf((x[:, 1] - j) / std) - cdf((x[:, 1] - j - 1) / std)).astype(float)
            p += px * py
    return np.log(p / 32.0)


def log_density(name, x):
    """Exact log p(x) where known in closed form, else None."""
    if name == "two_moons":
        return _log_mixture(x, _moons_centres(), 0.05)
    if name == "circle":
        return _log_mixture(x, _ring_centres(), 0.05)
    if name == "grid":
        return _log_mixture(x, _grid_centres(), 0.01)
    if name == "checkerboard":
        return _log_checkerboard(x)
    return None


def entropy(name, n=20000, seed=1234):
    """(H, standard error) of the dataset's density in nats by Monte Carlo, or None."""
    rng = np.random.default_rng(seed)
    x = sample(name, n, rng)
    lp = log_density(name, x)
    if lp is None:
        return None
    return float(-lp.mean()), float(lp.std(ddof=1) / math.sqrt(n))


if __name__ == "__main__":
    for ds in ("two_moons", "circle", "grid", "checkerboard"):
        print(ds, entropy(ds))
