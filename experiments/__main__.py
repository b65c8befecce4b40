"""Run every experiment in course order: `python -m experiments` (what `make report` does).

Prints a progress line per experiment, goes on past a failing one, writes each one's log
under results/<name>/, runs the benchmarks into results/benchmarks/ (unless --no-bench),
builds results/index.html (experiments.report, failures included) and exits non-zero if
any step failed. A failing step's log ends with its one-line error (with --debug, which is
passed on to every experiment, its traceback).
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

from experiments import report
from experiments.common.cli import DEBUG_HELP, run_main
from experiments.registry import EXPERIMENTS

RESULTS = Path("results")


def run(module, out, seed, debug=False):
    """Run `python -m module --seed seed --out out [--debug]`, its output to out/run.log; return (ok, seconds)."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(out / "run.log", "w") as log:
        completed = subprocess.run([sys.executable, "-m", module, "--seed", str(seed), "--out", str(out)]
                                   + ["--debug"] * debug, stdout=log, stderr=subprocess.STDOUT)
    return completed.returncode == 0, time.perf_counter() - started


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
        ok, seconds = run(module, out, args.seed, args.debug and module != "benchmarks")
        print(f"{'ok' if ok else 'FAILED'} in {seconds:.0f} s" + ("" if ok else f" (see {out / 'run.log'})"))
        if not ok:
            failed.append(module)
    print(f"report: {report.build(RESULTS)}")
    if failed:
        sys.exit(f"{len(failed)} step(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    run_main(main)
