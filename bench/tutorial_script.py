#!/usr/bin/python3
"""The whole tutorial script's time: TorchEBM's against cuEBM's, in one run.

Runs bench/torchebm_tutorial_script.py (TorchEBM 0.3.17) and examples/python/gaussian_mixture.py
(cuEBM's Python package) as whole processes, as a user runs them: interpreter start, imports,
200 epochs of CD-10, the density figures with their samples, the final samples. Each side runs at
1 thread and at all cores, --repeats times, interleaved; its best time over thread counts and
repeats is compared. With figures, each script reports the time it spent in matplotlib
(importing it and drawing: the same Python code on both sides), and the table also gives the
time without it; with --figures both (default) it also runs them with --no-figures (no figures,
no figure samples).

Usage: PYTHONPATH=python /usr/bin/python3 bench/tutorial_script.py [--repeats 3]
       [--figures both|on|off] [--epochs 200] [--force]
Prints one table (markdown) and exits 0; exit status 3 when the machine is busy (1-minute load
above 0.5 after waiting up to 2 minutes, not --force) or a peer is missing.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRIPTS = {
    "TorchEBM": [sys.executable, str(HERE / "torchebm_tutorial_script.py")],
    "cuEBM": [sys.executable, str(ROOT / "examples" / "python" / "gaussian_mixture.py")],
}


def run_once(side, threads, figures, epochs, out_dir):
    """Wall seconds of one whole run of a side's script and the seconds it says it spent in
    matplotlib's drawing (raises on failure)."""
    cmd = SCRIPTS[side] + ["--epochs", str(epochs), "--threads", str(threads),
                           "--output", str(out_dir)]
    if not figures:
        cmd.append("--no-figures")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(HERE), str(ROOT / "python"), env.get("PYTHONPATH", "")] if p)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{side} ({' '.join(cmd)}) failed with status {r.returncode}:\n"
                           f"{r.stderr[-2000:]}")
    drawing = 0.0
    for line in r.stdout.splitlines():
        if line.startswith("Figures: ") and " s in matplotlib" in line:  # import and drawing
            drawing = float(line.split(", ")[1].split(" s ")[0])
    return seconds, drawing


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--figures", choices=["both", "on", "off"], default="both")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--force", action="store_true", help="measure even on a busy machine")
    args = parser.parse_args()
    if args.repeats < 1 or args.epochs < 1:
        parser.error("--repeats and --epochs must be >= 1")

    # As bench/compare.sh: wait up to 2 minutes for the load of a just-finished job to decay.
    deadline = time.monotonic() + 120
    while os.getloadavg()[0] > 0.5 and not args.force and time.monotonic() < deadline:
        time.sleep(5)
    load = os.getloadavg()[0]
    if load > 0.5 and not args.force:
        print(f"machine busy (1-minute load {load:.2f}); rerun when idle or with --force")
        return 3
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, cores})
    modes = {"both": [True, False], "on": [True], "off": [False]}[args.figures]

    best = {}  # (side, figures) -> (seconds, threads)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for _ in range(args.repeats):
                for figures in modes:
                    for threads in thread_counts:
                        for side in SCRIPTS:
                            s, drawing = run_once(side, threads, figures, args.epochs,
                                                  Path(tmp) / f"{side}_{threads}")
                            for key, t in [((side, figures), s)] + (
                                    [((side, "undrawn"), s - drawing)] if figures else []):
                                if key not in best or t < best[key][0]:
                                    best[key] = (t, threads)
        except RuntimeError as e:
            print(e)
            return 3

    print(f"Tutorial script, {args.epochs} epochs, whole process, best of {args.repeats} runs "
          f"at {', '.join(map(str, thread_counts))} threads; load at start {load:.2f}\n")
    print("| run | TorchEBM 0.3.17 | cuEBM (Python) | ratio |")
    print("|---|---|---|---|")
    labels = {True: "whole script with its figures",
              "undrawn": "whole script less matplotlib's time (its import and drawing)",
              False: "no figures (--no-figures: training and the final samples)"}
    for row in ([True, "undrawn"] if True in modes else []) + ([False] if False in modes else []):
        t, tt = best[("TorchEBM", row)]
        c, ct = best[("cuEBM", row)]
        print(f"| {labels[row]} | {t:.2f} s ({tt} thr) | {c:.2f} s ({ct} thr) | {t / c:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
