#!/usr/bin/python3
"""Builds compare.sh's table from the JSON outputs (standard library only).

  compare_table.py --cuebm T=bench.json [--cuebm T=...] [--torch T=torch.jsonl ...]
                   [--torchebm T=torchebm.jsonl ...] [--peak peak.json] [--device cpu]
                   [--load-start X] [--busy] [--note TEXT ...]

T is the thread count the file was measured with (a bare path: the count recorded in the
file). bench.json is bench_cuebm's --benchmark_format=json output (medians are used when it
holds repetitions); the torch files hold the JSON lines of torch_langevin.py and
torchebm_tutorial.py. Rows are matched by workload name (bench_cuebm's name less the _CPU /
_CUDA suffix). Each side's fastest thread count gives its cell and the ratio; a second table
lists every configuration.
"""

import argparse
import json
import os
import re
import sys

UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def split_tagged(text):
    """'2=path' -> (2, path); 'path' -> (None, path)."""
    m = re.match(r"^(\d+)=(.*)$", text)
    return (int(m.group(1)), m.group(2)) if m else (None, text)


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
    """{(workload, device): {"seconds", "gflops", ...}} and the benchmark context."""
    if not path or not os.path.exists(path) or os.path.getsize(path) == 0:
        return {}, {}
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
            "gflops": b.get("GFLOP"),
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


def best(by_threads):
    """(threads, seconds) of the fastest configuration in {threads: seconds}, or None."""
    if not by_threads:
        return None
    return min(by_threads.items(), key=lambda kv: kv[1])


def markdown(header, rows):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    out = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        out.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cuebm", action="append", default=[], required=True)
    parser.add_argument("--torch", action="append", default=[])
    parser.add_argument("--torchebm", action="append", default=[])
    parser.add_argument("--peak")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--load-start", type=float)
    parser.add_argument("--busy", action="store_true", help="mark the table as busy-machine")
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args()

    suffix = "CPU" if args.device == "cpu" else "CUDA"
    lines = []
    # {impl: {workload: {threads: seconds}}}, and {threads: gflops} for cuEBM.
    times = {"cuEBM": {}, "eager": {}, "TorchEBM": {}}
    gflops = {}
    errors = {}
    context = {}
    for tagged in args.cuebm:
        threads, path = split_tagged(tagged)
        runs, ctx = read_cuebm(path)
        context = context or ctx
        if threads is None:
            threads = int(ctx.get("cuebm_threads", 0) or 0)
        for (name, dev), run in runs.items():
            if dev != suffix:
                continue
            if "error" in run:
                errors[name] = run["error"]
                continue
            times["cuEBM"].setdefault(name, {})[threads] = run["seconds"]
            if run.get("gflops"):
                gflops.setdefault(name, {})[threads] = run["gflops"]
    infos, peer_errors = {}, []
    for impl, files in (("eager", args.torch), ("TorchEBM", args.torchebm)):
        ran = False
        for tagged in files:
            threads, path = split_tagged(tagged)
            records, info, error = read_json_lines(path)
            infos[impl] = infos.get(impl) or info
            if error:
                peer_errors.append(f"{impl} at {threads} thread(s) did not run: {error}")
            for name, rec in records.items():
                t = threads if threads is not None else rec.get("threads", 0)
                times[impl].setdefault(name, {})[t] = rec["seconds_per_iter"]
                ran = True
        if files and not ran and not any(e.startswith(impl) for e in peer_errors):
            peer_errors.append(f"{impl}: no results")

    peak = {}
    if args.peak and os.path.exists(args.peak):
        with open(args.peak, encoding="utf-8") as f:
            text = f.read().strip()
        if text:
            peak = json.loads(text.splitlines()[-1])

    def peak_at(threads):
        """fp32_peak's GFLOP/s for `threads` threads (1 or the count it ran with)."""
        if not peak:
            return None
        if threads == 1:
            return peak["per_core_gflops"]
        return peak["total_gflops"] if threads == peak["threads"] else None

    cores = context.get("num_cpus")
    load = args.load_start
    if args.busy:
        lines.append(
            f"**measured on a busy machine (load {load:.2f})**: every program shared its cores "
            "with other work; these are not idle-machine numbers"
            if load is not None
            else "**measured on a busy machine**"
        )
    all_threads = sorted({t for impl in times.values() for w in impl.values() for t in w})
    lines.append(
        f"device: {args.device}; cores: {cores}; threads tried: "
        f"{', '.join(str(t) for t in all_threads)}; 1-minute load average at the start: "
        + (f"{load:.2f}" if load is not None else "?")
    )
    if peak:
        lines.append(
            f"FP32 FMA peak ({peak['isa']}, {peak['vector_bits']}-bit): "
            f"{peak['per_core_gflops']:.1f} GFLOP/s on 1 thread, "
            f"{peak['total_gflops']:.1f} GFLOP/s on {peak['threads']} threads"
        )
    lines.append(f"cuEBM CPU runtime: {context.get('cuebm_cpu_runtime', '?')}")
    eager_info = infos.get("eager")
    if eager_info:
        loaded = [os.path.basename(p) for p in eager_info.get("blas_loaded", [])]
        optimised = any(re.search(r"openblas|mkl|blis", n) for n in loaded)
        lines.append(
            f"PyTorch {eager_info.get('torch')} eager, BLAS_INFO={eager_info.get('blas_info')}, "
            f"loaded: {', '.join(loaded) or '?'}"
            + (
                ""
                if optimised
                else " (the REFERENCE BLAS: PyTorch runs 5 to 20 times slower than with OpenBLAS;"
                " not a fair peer)"
            )
        )
    tebm_info = infos.get("TorchEBM")
    if tebm_info:
        lines.append(f"TorchEBM {tebm_info.get('torchebm')} on torch {tebm_info.get('torch')}")
    lines.append("")

    def cell(impl, name):
        b = best(times[impl].get(name))
        return None if b is None else (b[0], b[1])

    header = ["workload", "cuEBM", "PyTorch eager", "TorchEBM", "ratio", "% FP32 peak"]
    rows = []
    names = set(times["cuEBM"]) | set(errors)
    for name in sorted(names, key=row_order):
        if name in errors:
            rows.append([name, "error: " + errors[name]] + [""] * (len(header) - 2))
            continue
        ours = cell("cuEBM", name)
        cells = [name, f"{throughput(name, ours[1])} ({ours[0]} thr)"]
        ratios = []
        for impl in ("eager", "TorchEBM"):
            theirs = cell(impl, name)
            if theirs:
                cells.append(f"{throughput(name, theirs[1])} ({theirs[0]} thr)")
                ratios.append(f"{theirs[1] / ours[1]:.1f}x vs {impl}")
            else:
                cells.append("-")
        cells.append(", ".join(ratios) or "-")
        pct = "-"
        g = gflops.get(name, {}).get(ours[0])
        p = peak_at(ours[0])
        if g and p and name.startswith("Langevin"):
            pct = f"{100.0 * g / p:.1f}% ({g:.1f} GF/s)"
        cells.append(pct)
        rows.append(cells)
    lines += markdown(header, rows)
    lines.append("")
    lines.append(
        "Each cell is that implementation at its fastest thread count (in brackets); ratio: the"
    )
    lines.append(
        "peer's best time per iteration over cuEBM's best (same work); > 1: cuEBM is faster."
    )
    lines.append(
        "% FP32 peak: cuEBM's GFLOP/s (4 * sum w_i w_i+1 FLOP per chain-step) over fp32_peak's"
    )
    lines.append("  figure for the same thread count.")
    lines.append("")

    # Every configuration, so the choice of the best is visible.
    header2 = ["workload"]
    columns = []
    for impl in ("cuEBM", "eager", "TorchEBM"):
        ts = sorted({t for w in times[impl].values() for t in w})
        for t in ts:
            header2.append(f"{impl}, {t} thr")
            columns.append((impl, t))
    rows2 = []
    for name in sorted(names - set(errors), key=row_order):
        r = [name]
        for impl, t in columns:
            s = times[impl].get(name, {}).get(t)
            r.append(throughput(name, s) if s else "-")
        rows2.append(r)
    lines.append("Every configuration:")
    lines.append("")
    lines += markdown(header2, rows2)
    lines.append("")

    notes = list(peer_errors) + list(args.note)
    if load is not None and load > 0.5 and not args.busy:
        notes.append(f"the 1-minute load average was {load:.2f} at the start (above 0.5)")
    for n in notes:
        lines.append("note: " + n)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
