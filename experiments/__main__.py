"""Run every experiment: `python -m experiments` (what `make report` does).

The experiments run as child processes, --jobs of them at a time (default: one per core), each then
on one BLAS, OpenMP and Numba thread, so that the steps side by side share the cores without
oversubscribing them. An experiment starts only after those whose results it reads (its `after` in
experiments.registry); among those ready, the longest chain of work ahead starts first. Prints a
progress line per finished step (its wall time and peak resident memory), goes on past a failing
one, writes each one's log under results/<name>/, then runs the benchmarks alone, on the machine's
default threads, in one short round (BENCHMARK_OPTIONS), into results/benchmarks/ (unless --no-bench),
records every step's time and memory in results/run_table.json, builds results/index.html
(experiments.report, failures included) and exits non-zero if any step failed. A failing step's log
ends with its one-line error (with --debug, which is passed on to every experiment, its traceback).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

from coursedata.cli import DEBUG_HELP, run_main
from coursedata.files import atomic_write
from coursedata.paths import environment_importing_project
from experiments.registry import EXPERIMENTS, RUN_TABLE

RESULTS = Path("results")
THREAD_LIMITS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
# The report only shows the benchmarks: one round of 0.2 s per implementation and case instead of `python -m
# benchmarks`' three of 0.6 s (`make bench` keeps those) took their step from ~60 to ~30 s, alone at the end.
BENCHMARK_OPTIONS = ("--rounds", "1", "--budget", "0.2")


@dataclass(frozen=True)
class StepRun:
    """How one child process went: its exit status, wall time, peak resident set size, and processor time (user +
    system, of all its threads: beside other work a step's wall time grows, its processor time much less)."""

    ok: bool
    seconds: float
    peak_rss_bytes: int
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class Step:
    """One child process to run: `python -m module` with `options` (more command-line arguments) writing to out,
    after the modules in `after` have finished, taking about `seconds` (for the order of starting), on `threads`
    threads (None: the default)."""

    module: str
    out: Path
    after: tuple = ()
    seconds: float = 0.0
    threads: int | None = None
    options: tuple = ()


def child_environment(threads=None) -> dict:
    """The environment of a step: the project importable (environment_importing_project) and, with
    threads set, BLAS, OpenMP and Numba each limited to that many threads."""
    environment = environment_importing_project()
    if threads is not None:
        environment.update(dict.fromkeys(THREAD_LIMITS, str(threads)))
    return environment


def run_child(command, log, threads=None) -> StepRun:
    """Run command (a list) with its stdout and stderr to the open file `log` and wait for it; threads: see
    child_environment.

    The peak resident memory is that child's own (os.wait4's rusage; ru_maxrss is in KiB on
    Linux): resource.getrusage(RUSAGE_CHILDREN) would give the largest of all children so far.
    Linux counts the parent's resident memory at the fork into the child's peak, so this module
    keeps the runner small: it imports neither NumPy nor tinynet (the report is imported to build it).
    """
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_environment(threads))
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait for it again
    return StepRun(child.returncode == 0, time.perf_counter() - started, usage.ru_maxrss * 1024,
                   usage.ru_utime + usage.ru_stime)


def run(module, out, seed, options=(), threads=None) -> StepRun:
    """Run `python -m module --seed seed --out out [options]`, its output to out/run.log; threads: see
    child_environment."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "run.log", "w") as log:
        return run_child([sys.executable, "-m", module, "--seed", str(seed), "--out", str(out), *options], log,
                         threads)


def work_ahead(steps) -> dict:
    """{module: its seconds plus the longest chain of seconds of the steps that wait for it}."""
    waiting_for = {step.module: [other for other in steps if step.module in other.after] for step in steps}
    ahead = {}

    def chain(step):
        if step.module not in ahead:
            ahead[step.module] = step.seconds + max((chain(other) for other in waiting_for[step.module]), default=0.0)
        return ahead[step.module]

    for step in steps:
        chain(step)
    return ahead


def as_finished(steps, jobs, launch):
    """Call launch(step) for every step, at most `jobs` at a time, and yield (step, its result) as each finishes.

    A step starts once every step named in its `after` (steps before it in the list) has finished, failed or
    not (the experiments read such results when they are there); among the steps ready, the one with the most
    work_ahead first.
    """
    ahead = work_ahead(steps)
    waiting = sorted(steps, key=lambda step: -ahead[step.module])  # sorted() is stable: ties keep course order
    unfinished = {step.module for step in steps}
    with ThreadPoolExecutor(jobs) as pool:
        running = {}
        while waiting or running:
            ready = [step for step in waiting if unfinished.isdisjoint(step.after)]
            for step in ready[:jobs - len(running)]:
                waiting.remove(step)
                running[pool.submit(launch, step)] = step
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                step = running.pop(future)
                unfinished.discard(step.module)
                yield step, future.result()


def record(results, module, step):
    """Add (or replace) module's row in results/run_table.json: {module: {ok, seconds, peak_rss_bytes, cpu_seconds}}."""
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
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="experiments run at a time, each on one thread when more than one (default: the cores)")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP + " (in every experiment's log too)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    threads = 1 if args.jobs > 1 else None
    steps = [Step(f"experiments.{e.name}", RESULTS / e.name, tuple(f"experiments.{name}" for name in e.after),
                  e.seconds, threads, ("--debug",) * args.debug) for e in EXPERIMENTS if e.name in (args.only or names)]
    if not args.no_bench:  # after every experiment, so alone, and on the default threads: its numbers are timings
        steps.append(Step("benchmarks", RESULTS / "benchmarks", after=tuple(step.module for step in steps),
                          options=BENCHMARK_OPTIONS))
    started, failed = time.perf_counter(), []

    def launch(step):
        return run(step.module, step.out, args.seed, step.options, step.threads)

    for finished, (step, outcome) in enumerate(as_finished(steps, args.jobs, launch), start=1):
        record(RESULTS, step.module, outcome)
        print(f"[{finished}/{len(steps)}] {step.module} ... {'ok' if outcome.ok else 'FAILED'} in "
              f"{outcome.seconds:.0f} s, peak {outcome.peak_rss_bytes / 1e6:.0f} MB"
              + ("" if outcome.ok else f" (see {step.out / 'run.log'})"), flush=True)
        if not outcome.ok:
            failed.append(step.module)
    print(f"{len(steps)} steps in {time.perf_counter() - started:.0f} s, {args.jobs} at a time")
    from experiments import report  # only now: see run_child

    print(f"report: {report.build(RESULTS)}")
    if failed:
        sys.exit(f"{len(failed)} step(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    run_main(main)
