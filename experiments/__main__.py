"""Run every experiment in course order: `python -m experiments` (what `make report` does).

Prints a progress line per experiment, goes on past a failing one, writes each one's log
under results/<name>/, runs the benchmarks into results/benchmarks/ (unless --no-bench),
builds results/index.html (experiments.report, failures included) and exits non-zero if
any step failed.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

from experiments import report
from experiments.registry import EXPERIMENTS

RESULTS = Path("results")


def run(module, out, seed):
    """Run `python -m module --seed seed --out out`, its output to out/run.log; return (ok, seconds)."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(out / "run.log", "w") as log:
        completed = subprocess.run([sys.executable, "-m", module, "--seed", str(seed), "--out", str(out)],
                                   stdout=log, stderr=subprocess.STDOUT)
    return completed.returncode == 0, time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="run only these experiments")
    parser.add_argument("--no-bench", action="store_true", help="leave out the benchmarks")
    args = parser.parse_args(argv)
    steps = [(f"experiments.{name}", RESULTS / name) for name in
             args.only or [experiment.name for experiment in EXPERIMENTS]]
    if not args.no_bench:
        steps.append(("benchmarks", RESULTS / "benchmarks"))
    failed = []
    for i, (module, out) in enumerate(steps, start=1):
        print(f"[{i}/{len(steps)}] {module} ...", end=" ", flush=True)
        ok, seconds = run(module, out, args.seed)
        print(f"{'ok' if ok else 'FAILED'} in {seconds:.0f} s" + ("" if ok else f" (see {out / 'run.log'})"))
        if not ok:
            failed.append(module)
    print(f"report: {report.build(RESULTS)}")
    if failed:
        sys.exit(f"{len(failed)} step(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
