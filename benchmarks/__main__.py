"""python -m benchmarks [--quick] [--budget SECONDS] [--no-torch] [--only TEXT] [--out DIR]: print the benchmark table.

Every case runs its tinynet, plain NumPy and (when torch is importable) PyTorch CPU
implementations on the same float32 inputs, checks that their results agree, then prints
the median time of each and tinynet's ratio to the others. Exits 1 if results disagree.
With --out, the table also goes to DIR/metrics.json ("machine" lines and "cases" rows), where
`make report` picks it up for the report's headline.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

from coursedata.files import write_atomically

from . import cases as benchmark_cases
from .timing import exit_status, machine_lines, matmul_gflops, median_seconds

TOLERANCE = 2e-3  # float32 results of different summation orders, relative to the largest value


def worst_difference(results, expected, chunk=1 << 20):
    """max over paired arrays of max |result - expected| / max |expected|, in float64 `chunk` elements at a time
    (whole float64 copies of the seed-004 CNN's 35M fc weights, and their difference, would take a GB)."""
    worst = 0.0
    for result, wanted in zip(results, expected):
        if np.shape(result) != np.shape(wanted):
            return np.inf
        result, wanted = np.ravel(result), np.ravel(wanted)
        difference = largest = 0.0
        for start in range(0, result.size, chunk):
            part, wanted_part = (np.asarray(a[start:start + chunk], dtype=np.float64) for a in (result, wanted))
            difference = max(difference, np.max(np.abs(part - wanted_part)))
            largest = max(largest, np.max(np.abs(wanted_part)))
        worst = max(worst, difference / max(largest, 1e-30))
    return worst


def measure(case, budget):
    """({implementation: median seconds}, worst difference of any implementation from tinynet)."""
    first = {name: run() for name, run in case.runners.items()}  # also compiles and warms up
    difference = max(worst_difference(first[name], first["tinynet"]) for name in first)
    return {name: median_seconds(run, budget) for name, run in case.runners.items()}, difference


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def milliseconds(seconds):
    """'5.47' (ms), or below 1 ms three significant digits ('0.214', '0.00231'): the per-op cases take microseconds."""
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.2f}" if seconds >= 1e-3 else f"{seconds * 1e3:.3g}"


def table_row(case, seconds, difference):
    tinynet, numpy_time, torch_time = (seconds.get(name) for name in ("tinynet", "numpy", "torch"))
    vs_torch = tinynet / torch_time if torch_time else None
    verdict = "-"
    if case.target and vs_torch is not None:
        verdict = f"{'met' if vs_torch <= case.target else 'MISSED'} (<= {case.target}x)"
    gflops = None if case.flops is None else case.flops / tinynet / 1e9
    torch_gflops = None if case.flops is None or torch_time is None else case.flops / torch_time / 1e9
    cells = [case.name, milliseconds(tinynet), milliseconds(numpy_time), milliseconds(torch_time),
             fmt(tinynet / numpy_time, ".2f"), fmt(vs_torch, ".2f"), fmt(gflops, ".1f"), fmt(torch_gflops, ".1f"),
             verdict, f"{difference:.0e}"]
    return cells, verdict.startswith("MISSED")


HEADER = ["case", "tinynet ms", "numpy ms", "torch ms", "tinynet/numpy", "tinynet/torch", "tinynet GFLOP/s",
          "torch GFLOP/s", "target vs torch", "max diff"]


def write_metrics(out, metrics):
    """Write out/metrics.json (creating out) atomically: never half-written."""
    write_atomically(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code paths, times nothing useful")
    parser.add_argument("--budget", type=float, default=0.6,
                        help="seconds of timed calls per implementation and case (3..25 calls; calls under 1 ms "
                             "in loops of 1 ms, as many as fit)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when it is installed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", metavar="TEXT",
                        help="run only the cases whose name contains TEXT (may be given several times)")
    parser.add_argument("--out", type=Path, help="also write the table to OUT/metrics.json")
    args = parser.parse_args(argv)
    torch = None if args.no_torch else benchmark_cases.torch_reference
    machine = machine_lines(torch.torch.__version__ if torch else "not installed")
    machine.append(f"NumPy float32 matmul 1024^3: {matmul_gflops(budget=args.budget):.1f} GFLOP/s")
    print("\n".join(machine) + "\n")
    print("| " + " | ".join(HEADER) + " |\n|" + "---|" * len(HEADER), flush=True)
    missed, disagree, rows = [], [], []
    for case in benchmark_cases.all_cases(quick=args.quick, seed=args.seed, with_torch=torch is not None):
        if args.only and not any(text in case.name for text in args.only):
            continue
        seconds, difference = measure(case, args.budget)
        cells, is_missed = table_row(case, seconds, difference)
        print("| " + " | ".join(cells) + " |", flush=True)
        rows.append(dict(zip(HEADER, cells)))
        missed += [case.name] if is_missed else []
        disagree += [case.name] if difference > TOLERANCE else []
        del case  # before all_cases makes the next: the seed-004 CNN case holds 0.5 GB, the face ResNet's makes 0.6 GB
    print(f"\ntargets missed: {', '.join(missed) or 'none'}")
    if args.out:
        write_metrics(args.out, {"machine": machine, "cases": rows, "targets_missed": missed})
    return exit_status(disagree, TOLERANCE)


if __name__ == "__main__":
    sys.exit(main())
