#!/usr/bin/python3
"""Reference split rank-normalised R-hat and bulk ESS (Vehtari et al. 2021) in NumPy/SciPy.

An implementation of the paper's definitions independent of host/sampling/diagnostics.cpp
(SciPy's rankdata and norm.ppf); `/usr/bin/python3 tests/reference/diagnostics_reference.py`
prints the values tests/test_diagnostics.cpp expects.
"""
import numpy as np
from scipy.stats import norm, rankdata

def split(x):  # x: chains x n
    n = x.shape[1] // 2
    return np.concatenate([x[:, :n], x[:, x.shape[1] - n:]], axis=0)

def z_scale(x):
    s = x.size
    r = rankdata(x.ravel(), method="average").reshape(x.shape)
    return norm.ppf((r - 0.375) / (s + 0.25))

def rhat_basic(x):
    m, n = x.shape
    means = x.mean(1)
    w = x.var(1, ddof=1).mean()
    b = n * means.var(ddof=1)
    var_plus = (n - 1) / n * w + b / n
    return np.sqrt(var_plus / w)

def rhat(x):
    xs = split(x)
    bulk = rhat_basic(z_scale(xs))
    folded = np.abs(xs - np.median(xs))
    tail = rhat_basic(z_scale(folded))
    return max(bulk, tail)

def autocov(y):  # biased autocovariance, lags 0..n-1
    n = y.size
    y = y - y.mean()
    return np.array([np.dot(y[: n - t], y[t:]) / n for t in range(n)])

def ess(x):  # x already split and z-scaled
    m, n = x.shape
    acov = np.array([autocov(c) for c in x])
    means = x.mean(1)
    w = x.var(1, ddof=1).mean()
    var_plus = (n - 1) / n * w + n * means.var(ddof=1) / n if m > 1 else (n - 1) / n * w
    rho = 1 - (w - acov.mean(0)) / var_plus
    rho[0] = 1
    # Geyer's initial positive sequence, made monotone
    t = 0; s = []
    while t + 1 < n:
        p = rho[t] + rho[t + 1]
        if p < 0: break
        s.append(p); t += 2
    for k in range(1, len(s)):
        s[k] = min(s[k], s[k - 1])
    tau = -1 + 2 * sum(s)
    tau = max(tau, 1 / np.log10(m * n))
    return m * n / tau

def ess_bulk(x):
    return ess(z_scale(split(x)))

if __name__ == "__main__":
    a = np.array([[0.1, 0.5, -0.3, 1.2, 0.7, 0.2, -0.8, 0.4],
                  [1.5, 1.1, 0.9, 2.0, 1.7, 1.3, 0.8, 1.6],
                  [0.3, -0.2, 0.6, 0.1, -0.5, 0.9, 0.0, 0.2]])
    print("rhat", repr(rhat(a)), "ess_bulk", repr(ess_bulk(a)))
    # 4 x 200 draws of v <- 0.6 v + sin(1.7 k + 0.3), as in the C++ test
    x = np.zeros((4, 200)); 
    for c in range(4):
        v = 0.0
        for i in range(200):
            v = 0.6 * v + np.sin(1.7 * (c * 200 + i) + 0.3)
            x[c, i] = v
    print("ar rhat", repr(rhat(x)), "ess_bulk", repr(ess_bulk(x)))
