"""python -m benchmarks [--quick] [--budget SECONDS] [--rounds N] [--no-torch] [--only TEXT] [--out DIR]
[--markdown-out FILE] [--update-readme [FILE]]: print the benchmark table.

Every case runs its tinynet, plain NumPy and (when torch is importable) PyTorch CPU
implementations on the same float32 inputs, checks that their results agree, then times them in
interleaved rounds (every implementation once a round, the order rotated) and prints, per
implementation, the median of its round times and their minimum, with tinynet's ratios to the
others; the load average before and after the run frames the table. Exits 1 if results disagree.
With --out, the table also goes to DIR/metrics.json ("machine" lines, "cases" rows, the rounds'
times, load and time of the run), where `make report` picks it up for the report's headline.
--markdown-out writes the run as a Markdown block; --update-readme puts that block in
benchmarks/README.md's "Latest run" section (between its marker comments).
"""
import argparse
import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from coursedata.files import write_atomically
from tinynet.kernels.conv import release_scratch

from . import cases as benchmark_cases
from .latest_run import README, command_line, markdown_block, replace_section, section_bounds
from .timing import (
    exit_status,
    interleaved_rounds,
    load_average,
    machine_lines,
    matmul_gflops,
    median_and_minimum,
    median_seconds,
)

TOLERANCE = 2e-3  # float32 results of different summation orders, relative to the largest value
IMPLEMENTATIONS = ("tinynet", "numpy", "torch")
# Three rounds of one call each are the three calls a slow case (0.3 s a call or more) had before the rounds, so a
# default run takes about as long as it did; one-call samples of all rounds together are at most about MAX_REPEATS.
ROUNDS = 3
MAX_REPEATS = 25


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


def measure(case, budget, rounds):
    """({implementation: [seconds in each round]}, worst difference of any implementation from tinynet).

    The rounds interleave the implementations (timing.interleaved_rounds); in each, an implementation's time is
    the median of samples filling budget / rounds seconds (timing.median_seconds), at least one call.
    """
    first = {name: run() for name, run in case.runners.items()}  # also compiles and warms up
    difference = max(worst_difference(first[name], first["tinynet"]) for name in first)
    most = math.ceil(MAX_REPEATS / rounds)
    return interleaved_rounds(case.runners, rounds,
                              lambda run: median_seconds(run, budget / rounds, 1, most)), difference


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def milliseconds(seconds):
    """'5.47' (ms), or below 1 ms three significant digits ('0.214', '0.00231'): the per-op cases take microseconds."""
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.2f}" if seconds >= 1e-3 else f"{seconds * 1e3:.3g}"


def ratio(numerator, denominator):
    return numerator / denominator if numerator is not None and denominator else None


def table_row(case, medians, minimums, difference):
    """(cells under HEADER, whether the case missed its target): times in ms; ratios, GFLOP/s and the verdict from
    the medians, with the ratio of the minimums beside tinynet/torch."""
    tinynet, numpy_time, torch_time = (medians.get(name) for name in IMPLEMENTATIONS)
    vs_torch = ratio(tinynet, torch_time)
    verdict = "-"
    if case.target and vs_torch is not None:
        verdict = f"{'met' if vs_torch <= case.target else 'MISSED'} (<= {case.target}x)"
    gflops = None if case.flops is None else case.flops / tinynet / 1e9
    torch_gflops = None if case.flops is None or torch_time is None else case.flops / torch_time / 1e9
    times = [milliseconds(seconds.get(name)) for name in IMPLEMENTATIONS for seconds in (medians, minimums)]
    cells = [case.name, *times, fmt(ratio(tinynet, numpy_time), ".2f"), fmt(vs_torch, ".2f"),
             fmt(ratio(minimums["tinynet"], minimums.get("torch")), ".2f"), fmt(gflops, ".1f"),
             fmt(torch_gflops, ".1f"), verdict, f"{difference:.0e}"]
    return cells, verdict.startswith("MISSED")


HEADER = ["case", *(f"{name}{kind} ms" for name in IMPLEMENTATIONS for kind in ("", " min")), "tinynet/numpy",
          "tinynet/torch", "tinynet/torch of minimums", "tinynet GFLOP/s", "torch GFLOP/s", "target vs torch",
          "max diff"]


def write_metrics(out, metrics):
    """Write out/metrics.json (creating out) atomically: never half-written."""
    write_atomically(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code paths, times nothing useful")
    parser.add_argument("--budget", type=float, default=0.6,
                        help="seconds of timed calls per implementation and case, split over the rounds (at least "
                             "one call a round; calls under 1 ms in loops of 1 ms, as many as fit)")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help="interleaved rounds: in each, every implementation of a case is timed in turn")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when it is installed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", metavar="TEXT",
                        help="run only the cases whose name contains TEXT (may be given several times)")
    parser.add_argument("--out", type=Path, help="also write the table to OUT/metrics.json")
    parser.add_argument("--markdown-out", type=Path, metavar="FILE",
                        help="also write the run (command, machine, time, load, table) to FILE as Markdown")
    parser.add_argument("--update-readme", type=Path, nargs="?", const=README, metavar="FILE",
                        help="put the run's Markdown in the 'Latest run' section of FILE (default "
                             "benchmarks/README.md), between its marker comments")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.update_readme:  # checked before the run, not after minutes of it
        try:
            section_bounds(args.update_readme.read_text(), args.update_readme)
        except (OSError, ValueError) as error:
            parser.error(f"--update-readme: {error}")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_arguments(argv)
    started, load_before = datetime.now(timezone.utc), load_average()
    torch = None if args.no_torch else benchmark_cases.torch_reference
    machine = machine_lines(f"{torch.torch.__version__} ({torch.torch.get_num_threads()} threads)" if torch
                            else "not installed")
    machine.append(f"NumPy float32 matmul 1024^3: {matmul_gflops(budget=args.budget):.1f} GFLOP/s")
    header = [f"Run at {started:%Y-%m-%d %H:%M} UTC: {args.rounds} interleaved rounds, {args.budget} s per "
              f"implementation and case; load average (1 min) before: {load_before:.2f}", *machine]
    print("\n".join(header) + "\n")
    table = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    print("\n".join(table), flush=True)
    missed, disagree, rows, round_seconds = [], [], [], {}
    for case in benchmark_cases.all_cases(quick=args.quick, seed=args.seed, with_torch=torch is not None):
        if args.only and not any(text in case.name for text in args.only):
            continue
        round_seconds[case.name], difference = measure(case, args.budget, args.rounds)
        cells, is_missed = table_row(case, *median_and_minimum(round_seconds[case.name]), difference)
        table.append("| " + " | ".join(cells) + " |")
        print(table[-1], flush=True)
        rows.append(dict(zip(HEADER, cells)))
        missed += [case.name] if is_missed else []
        disagree += [case.name] if difference > TOLERANCE else []
        del case  # before all_cases makes the next: the seed-004 CNN case holds 0.5 GB, the face ResNet's makes 0.6 GB
        release_scratch()  # nor the convolutions' reused buffers (each case's first, untimed call makes its own)
    load_after = load_average()
    footer = [f"load average (1 min) after: {load_after:.2f}", f"targets missed: {', '.join(missed) or 'none'}"]
    print("\n" + "\n".join(footer))
    if args.out:
        write_metrics(args.out, {"machine": machine, "started": started.isoformat(timespec="seconds"),
                                 "command": command_line(argv), "rounds": args.rounds, "budget_seconds": args.budget,
                                 "load_before": load_before, "load_after": load_after, "cases": rows,
                                 "round_seconds": round_seconds, "targets_missed": missed})
    block = markdown_block(command_line(argv), header, table, footer)
    if args.markdown_out:
        write_atomically(args.markdown_out, block)
    if args.update_readme:
        write_atomically(args.update_readme, replace_section(args.update_readme.read_text(), block,
                                                             args.update_readme))
    return exit_status(disagree, TOLERANCE)

if __name__ == "__main__":
    sys.exit(main())
