#!/usr/bin/python3
"""Builds compare.sh's table from the JSON outputs (standard library only).

  compare_table.py --cuebm bench.json [--peak peak.json] [--torch torch.jsonl]
                   [--torchebm torchebm.jsonl] [--device cpu] [--note TEXT ...]

bench.json is bench_cuebm's --benchmark_format=json output (medians are used when it holds
repetitions); the torch files hold the JSON lines of torch_langevin.py and torchebm_tutorial.py.
Rows are matched by workload name (bench_cuebm's name less the _CPU / _CUDA suffix).
"""

import argparse
import json
import os
import re
import sys

UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def read_json_lines(path):
    """(records by name, info dict, error text) of a JSON-lines file."""
    records, info, errors = {}, {}, []
    if not path or not os.path.exists(path):
        return records, info, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "info" in obj:
                info = obj["info"]
            elif "error" in obj:
                errors.append(obj["error"])
            elif "name" in obj:
                records[obj["name"]] = obj
    return records, info, "; ".join(errors) or None


def read_cuebm(path):
    """{workload: {"seconds", "gflops", "items_per_s"}} and the benchmark context."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    runs, medians = {}, {}
    for b in data.get("benchmarks", []):
        name = b.get("run_name", b["name"])
        name = re.sub(r"/real_time$", "", name)
        m = re.match(r"(.*)_(CPU|CUDA\d*)$", name)
        if not m:
            continue
        key = (m.group(1), m.group(2))
        if b.get("error_occurred"):
            runs[key] = {"error": b.get("error_message", "error")}
            continue
        unit = UNIT_SECONDS[b.get("time_unit", "ns")]
        entry = {
            "seconds": b["real_time"] * unit,
            "cpu_seconds": b["cpu_time"] * unit,  # the main thread's
            "gflops": b.get("GFLOP"),
            "items_per_s": b.get("items_per_second"),
        }
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[key] = entry
        else:
            runs.setdefault(key, entry)
    runs.update(medians)
    return runs, data.get("context", {})


def row_order(name):
    """Langevin, CD, Energy, Gradient; then by the numbers in the name."""
    families = ["Langevin", "CD10", "Energy", "Gradient"]
    family = name.split("/")[0]
    rank = families.index(family) if family in families else len(families)
    return (rank, [int(n) for n in re.findall(r"\d+", name)])


def throughput(name, seconds):
    """The row's natural unit: chain-steps/s, ms per iteration or rows/s."""
    m = re.search(r"/batch:(\d+)/k:(\d+)", name)
    if name.startswith("Langevin") and m:
        return f"{int(m.group(1)) * int(m.group(2)) / seconds / 1e6:.3g} M steps/s"
    m = re.search(r"/rows:(\d+)", name)
    if m:
        return f"{int(m.group(1)) / seconds / 1e6:.3g} M rows/s"
    return f"{seconds * 1e3:.3g} ms/it"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cuebm", required=True)
    parser.add_argument("--peak")
    parser.add_argument("--torch")
    parser.add_argument("--torchebm")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args()

    suffix = "CPU" if args.device == "cpu" else "CUDA"
    runs, context = read_cuebm(args.cuebm)
    eager, eager_info, eager_error = read_json_lines(args.torch)
    tebm, tebm_info, tebm_error = read_json_lines(args.torchebm)
    peak = {}
    if args.peak and os.path.exists(args.peak):
        with open(args.peak, encoding="utf-8") as f:
            text = f.read().strip()
        if text:
            peak = json.loads(text.splitlines()[-1])

    threads = context.get("cuebm_threads", "?")
    load = (context.get("load_avg") or [None])[0]
    cores = context.get("num_cpus")
    print(
        f"device: {args.device}; threads: {threads}; cores: {cores}; 1-minute load average "
        f"when bench_cuebm started: {load:.2f}" if load is not None else ""
    )
    if peak:
        print(
            f"FP32 FMA peak ({peak['isa']}, {peak['vector_bits']}-bit): "
            f"{peak['per_core_gflops']:.1f} GFLOP/s per core, "
            f"{peak['total_gflops']:.1f} GFLOP/s on {peak['threads']} threads "
            f"(by wall clock under the current load: {peak['wall_total_gflops']:.1f})"
        )
    if eager_info:
        print(
            f"PyTorch {eager_info.get('torch')} eager, {eager_info.get('threads')} threads, "
            f"BLAS_INFO={eager_info.get('blas_info')}, loaded: "
            f"{', '.join(os.path.basename(p) for p in eager_info.get('blas_loaded', [])) or '?'}"
        )
    if tebm_info:
        print(f"TorchEBM {tebm_info.get('torchebm')} on torch {tebm_info.get('torch')}")
    print()

    # At one thread CPU time is the time the work actually ran, whatever else shares the
    # machine: then a CPU-time ratio and peak fraction are shown as well.
    single = str(threads) == "1" and args.device == "cpu"
    header = ["workload", "cuEBM", "PyTorch eager", "TorchEBM", "ratio", "% FP32 peak"]
    if single:
        header += ["ratio by CPU time", "% peak by CPU time"]
    rows = []
    for (name, dev), run in sorted(runs.items(), key=lambda kv: row_order(kv[0][0])):
        if dev != suffix:
            continue
        if "error" in run:
            rows.append([name, "error: " + run["error"]] + [""] * (len(header) - 2))
            continue
        sec = run["seconds"]
        cells = [name, throughput(name, sec)]
        ratios = []
        for peer, label in ((eager, "eager"), (tebm, "TorchEBM")):
            rec = peer.get(name)
            if rec:
                cells.append(throughput(name, rec["seconds_per_iter"]))
                ratios.append(f"{rec['seconds_per_iter'] / sec:.1f}x vs {label}")
            else:
                cells.append("-")
        cells.append(", ".join(ratios) or "-")
        pct = "-"
        if peak and run.get("gflops") and name.startswith("Langevin"):
            pct = f"{100.0 * run['gflops'] / peak['total_gflops']:.1f}% ({run['gflops']:.1f} GF/s)"
        cells.append(pct)
        if single:
            cpu = run["cpu_seconds"]
            cpu_ratios = [
                f"{peer[name]['cpu_seconds_per_iter'] / cpu:.1f}x vs {label}"
                for peer, label in ((eager, "eager"), (tebm, "TorchEBM"))
                if name in peer and "cpu_seconds_per_iter" in peer[name]
            ]
            cells.append(", ".join(cpu_ratios) or "-")
            cells.append(
                f"{100.0 * run['gflops'] * sec / cpu / peak['total_gflops']:.1f}%"
                if peak and run.get("gflops") and name.startswith("Langevin")
                else "-"
            )
        rows.append(cells)

    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print()
    print("ratio: the peer's time per iteration over cuEBM's (same work); > 1: cuEBM is faster.")
    print("% FP32 peak: cuEBM's GFLOP/s (4 * sum w_i w_i+1 FLOP per chain-step) over the")
    print("  fp32_peak total for the same thread count.")
    if single:
        print("by CPU time: the same with each program's CPU seconds instead of wall seconds")
    notes = list(args.note)
    if eager_error:
        notes.append(f"PyTorch eager did not run: {eager_error}")
    elif not eager and args.torch and os.path.exists(args.torch):
        notes.append("PyTorch eager: no results")
    if tebm_error:
        notes.append(f"TorchEBM did not run: {tebm_error}")
    elif not tebm and args.torchebm and os.path.exists(args.torchebm):
        notes.append("TorchEBM: no results")
    if load is not None and cores and load > 0.5 * cores:
        notes.append(
            f"the machine was busy (load average {load:.1f} on {cores} cores when bench_cuebm "
            "started): every program shared its cores, and multi-threaded timings suffer most"
        )
    for n in notes:
        print("note: " + n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
