"""Run every experiment in course order: `python -m experiments` (what `make report` does).

Prints a progress line per experiment (its wall time and peak resident memory), goes on past
a failing one, writes each one's log under results/<name>/, runs the benchmarks into
results/benchmarks/ (unless --no-bench), records every step's time and memory in
results/run_table.json, builds results/index.html (experiments.report, failures included)
and exits non-zero if any step failed. A failing step's log ends with its one-line error
(with --debug, which is passed on to every experiment, its traceback).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from coursedata.cli import DEBUG_HELP, run_main
from coursedata.files import atomic_write
from coursedata.paths import environment_importing_project
from experiments.registry import EXPERIMENTS, RUN_TABLE

RESULTS = Path("results")


@dataclass(frozen=True)
class StepRun:
    """How one child process went: its exit status, wall time and peak resident set size."""

    ok: bool
    seconds: float
    peak_rss_bytes: int


def run_child(command, log) -> StepRun:
    """Run command (a list) with its stdout and stderr to the open file `log` and wait for it.

    The peak resident memory is that child's own (os.wait4's rusage; ru_maxrss is in KiB on
    Linux): resource.getrusage(RUSAGE_CHILDREN) would give the largest of all children so far.
    Linux counts the parent's resident memory at the fork into the child's peak, so this module
    keeps the runner small: it imports neither NumPy nor tinynet (the report is imported to build it).
    """
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment_importing_project())
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait for it again
    return StepRun(child.returncode == 0, time.perf_counter() - started, usage.ru_maxrss * 1024)


def run(module, out, seed, debug=False) -> StepRun:
    """Run `python -m module --seed seed --out out [--debug]`, its output to out/run.log."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "run.log", "w") as log:
        return run_child([sys.executable, "-m", module, "--seed", str(seed), "--out", str(out)] + ["--debug"] * debug,
                         log)


def record(results, module, step):
    """Add (or replace) module's row in results/run_table.json: {module: {ok, seconds, peak_rss_bytes}}."""
    path = results / RUN_TABLE
    table = json.loads(path.read_text()) if path.exists() else {}
    table[module] = asdict(step)
    with atomic_write(path, "w") as file:
        file.write(json.dumps(table, indent=2) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    names = [experiment.name for experiment in EXPERIMENTS]
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME",
                        help=f"run only these experiments: {', '.join(names)}")
    parser.add_argument("--no-bench", action="store_true", help="leave out the benchmarks")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP + " (in every experiment's log too)")
    args = parser.parse_args(argv)
    steps = [(f"experiments.{name}", RESULTS / name) for name in args.only or names]
    if not args.no_bench:
        steps.append(("benchmarks", RESULTS / "benchmarks"))
    failed = []
    for i, (module, out) in enumerate(steps, start=1):
        print(f"[{i}/{len(steps)}] {module} ...", end=" ", flush=True)
        step = run(module, out, args.seed, args.debug and module != "benchmarks")
        record(RESULTS, module, step)
        print(f"{'ok' if step.ok else 'FAILED'} in {step.seconds:.0f} s, peak {step.peak_rss_bytes / 1e6:.0f} MB"
              + ("" if step.ok else f" (see {out / 'run.log'})"))
        if not step.ok:
            failed.append(module)
    from experiments import report  # only now: see run_child

    print(f"report: {report.build(RESULTS)}")
    if failed:
        sys.exit(f"{len(failed)} step(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    run_main(main)
