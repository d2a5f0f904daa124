"""What the peer benchmarks (bench/torchebm_*.py, bench/blackjax_mcmc.py) share: the JSON-line
output, the --threads option, importing TorchEBM without its plotting dependency, and timing.

They are run as scripts, so bench/ is on sys.path and `import peer_common` finds this file.
"""

import importlib
import importlib.util
import json
import os
import statistics
import sys
import time


def emit(record):
    """One JSON line on stdout, flushed (the compare scripts read them as they come)."""
    print(json.dumps(record), flush=True)


def fail(why):
    """Reports why the peer cannot run here as {"error": why} and exits with status 3."""
    emit({"error": why})
    sys.exit(3)


def add_threads_argument(parser, **kwargs):
    """--threads: torch.set_num_threads, default $CUEBM_BENCH_THREADS, else torch's default (0)."""
    parser.add_argument("--threads", type=int,
                        default=int(os.environ.get("CUEBM_BENCH_THREADS", "0") or 0), **kwargs)


def set_torch_threads(torch, threads):
    """torch.set_num_threads(threads) when threads > 0 (0 keeps torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


def import_torchebm(*names, install_hint=""):
    """The torchebm module followed by the objects named "module.attribute" (e.g.
    "torchebm.core.BaseEnergyFunction"), or exit through fail() saying why not."""
    if importlib.util.find_spec("torch") is None:
        fail("torch is not importable")
    if importlib.util.find_spec("matplotlib") is None:
        # torchebm.utils imports matplotlib for its plotting helpers only; the benchmarks do
        # not plot, so a stand-in module lets the package import without it.
        from unittest import mock

        for name in ("matplotlib", "matplotlib.pyplot", "matplotlib.cm", "matplotlib.colors"):
            sys.modules.setdefault(name, mock.MagicMock())
    try:
        torchebm = importlib.import_module("torchebm")
        found = [getattr(importlib.import_module(module), attribute)
                 for module, attribute in (name.rsplit(".", 1) for name in names)]
    except Exception as exc:  # any import failure: say why, do not crash the comparison
        fail(f"torchebm is not importable ({type(exc).__name__}: {exc}){install_hint}")
    return (torchebm, *found)


def torchebm_info(torchebm, torch, **extra):
    """The {"info": ...} line: TorchEBM's and torch's versions, torch's thread count, extra."""
    emit({"info": {"torchebm": getattr(torchebm, "__version__", "unknown"),
                   "torch": torch.__version__, **extra,
                   "threads": torch.get_num_threads()}})


def best_seconds(run, repeat):
    """The shortest of `repeat` timed calls of run()."""
    best = float("inf")
    for r in range(repeat):
        start = time.perf_counter()
        run(r)
        best = min(best, time.perf_counter() - start)
    return best


def median_seconds(step, seconds, warmup=5, min_reps=10):
    """The median time of step() over at least `seconds` (and `min_reps` calls) after `warmup`
    untimed calls."""
    for _ in range(warmup):
        step()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < min_reps:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
