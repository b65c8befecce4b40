"""Run every experiment in course order: `python -m experiments` (what `make report` does).

Prints a progress line per experiment, goes on past a failing one, writes each one's log
under results/<name>/, builds results/index.html (experiments.report, failures included)
and exits non-zero if any experiment failed.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

from experiments import report
from experiments.registry import EXPERIMENTS

RESULTS = Path("results")


def run(name, seed):
    """Run experiments/<name>.py with --seed and --out results/<name>/; return (ok, seconds)."""
    out = RESULTS / name
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(out / "run.log", "w") as log:
        completed = subprocess.run([sys.executable, "-m", f"experiments.{name}", "--seed", str(seed),
                                    "--out", str(out)], stdout=log, stderr=subprocess.STDOUT)
    return completed.returncode == 0, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="run only these experiments")
    args = parser.parse_args()
    names = args.only or [experiment.name for experiment in EXPERIMENTS]
    failed = []
    for i, name in enumerate(names, start=1):
        print(f"[{i}/{len(names)}] {name} ...", end=" ", flush=True)
        ok, seconds = run(name, args.seed)
        print(f"{'ok' if ok else 'FAILED'} in {seconds:.0f} s" + ("" if ok else f" (see {RESULTS / name / 'run.log'})"))
        if not ok:
            failed.append(name)
    print(f"report: {report.build(RESULTS)}")
    if failed:
        sys.exit(f"{len(failed)} experiment(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
