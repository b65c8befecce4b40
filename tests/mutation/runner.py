"""Run the mutants: each in a fresh copy of tinynet/ inside a temporary copy of the repo, never in the repo.

For each mutant: copy tinynet/ into the work directory, apply the patch, run the mutant's tests (pytest -x,
PYTHONPATH and the working directory the copy, a timeout) and its gradcheck probe (tests.mutation.probes).
Numba's cache lives in the work directory: a copy of the cache the baseline run filled, per mutant, so only a
mutated kernel file compiles again.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What the tests import or read besides tinynet/ (conftest.py imports coursedata; setup.cfg sets pytest's options).
COPIED = ("tests", "coursedata", "experiments", "benchmarks", "facescrub", "setup.cfg", "pyproject.toml")
IGNORED = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
# -x: the first failing test kills the mutant; -rfE lists it. CI=true makes hypothesis replay the same examples.
# -n 0: a mutant's few tests in one process (setup.cfg's addopts would start a pytest-xdist worker per core).
PYTEST = ("-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-x", "-q", "-rfE", "--no-header")


class PatchError(ValueError):
    """A mutant's original snippet is not in the source exactly once: the list has rotted."""


def patched(source: str, mutant) -> str:
    """source with the mutant's original snippet replaced; PatchError unless the snippet occurs exactly once."""
    count = source.count(mutant.original)
    if count != 1:
        raise PatchError(f"mutant {mutant.id}: its original snippet occurs {count} times in tinynet/{mutant.file} "
                         f"(expected once): update tests/mutation/mutants.py\n{mutant.original!r}")
    return source.replace(mutant.original, mutant.replacement)


def check_list(mutants, tinynet=REPO / "tinynet"):
    """PatchError for the first mutant that does not apply to the source in tinynet (or has no effect)."""
    for mutant in mutants:
        if mutant.original == mutant.replacement:
            raise PatchError(f"mutant {mutant.id}: the replacement is the original")
        patched((tinynet / mutant.file).read_text(), mutant)


@dataclass
class Result:
    """One mutant's verdicts. suite: killed, survived or timeout; killer: the first failing test (and why)."""
    id: str
    category: str
    suite: str
    killer: str
    gradcheck: str
    named_op: str
    named: bool
    gradcheck_message: str
    seconds: float

    def blamed(self) -> str:
        """The op gradcheck's message blames, marked when it is the mutated one."""
        return f"{self.named_op} (the mutated op)" if self.named else self.named_op


class Workspace:
    """A temporary copy of the repo's tests and packages, where each mutant gets a fresh tinynet/."""

    def __init__(self, root: Path, timeout: float):
        self.root, self.timeout = root, timeout
        for name in COPIED:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, root / name, ignore=IGNORED)
            else:
                shutil.copy2(source, root / name)
        self.numba_cache = root / "numba-cache"
        self.numba_cache.mkdir()

    def fresh_tinynet(self, mutant=None):
        """tinynet/ copied again (mtimes kept, so Numba's cache stays valid), with the mutant's patch if any."""
        shutil.rmtree(self.root / "tinynet", ignore_errors=True)
        shutil.copytree(REPO / "tinynet", self.root / "tinynet", ignore=IGNORED)
        if mutant is not None:
            path = self.root / "tinynet" / mutant.file
            path.write_text(patched(path.read_text(), mutant))

    def run(self, arguments, numba_cache, timeout=None):
        """(return code or None on timeout, output) of the venv's python with arguments, in the copy."""
        environment = dict(os.environ, PYTHONPATH=str(self.root), NUMBA_CACHE_DIR=str(numba_cache), CI="true",
                           PYTHONDONTWRITEBYTECODE="1")
        process = subprocess.Popen([sys.executable, *arguments], cwd=self.root, env=environment, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=timeout or self.timeout)
            return process.returncode, output
        except subprocess.TimeoutExpired:
            return None, ""
        finally:  # also on Ctrl-C: nothing of a mutant keeps running
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def baseline(self, mutants):
        """Check the unmutated copy: it imports the copy, every selection passes, every probe passes (and warm
        Numba's cache). RuntimeError otherwise: a failure there would count as a kill."""
        self.fresh_tinynet()
        code, output = self.run(("-c", "import tinynet; print(tinynet.__file__)"), self.numba_cache)
        if code != 0 or not output.strip().startswith(str(self.root)):
            raise RuntimeError(f"the copy does not import its own tinynet: {output.strip()}")
        print(f"baseline: tinynet imported from {output.strip()}", flush=True)
        selection = sorted({path for mutant in mutants for path in mutant.tests})
        started = time.monotonic()
        code, output = self.run((*PYTEST, *selection), self.numba_cache, timeout=4 * self.timeout)
        if code != 0:
            raise RuntimeError(f"the unmutated tests fail (or time out), so kills would mean nothing:\n{output}")
        print(f"baseline: {len(selection)} test paths pass in {time.monotonic() - started:.0f} s", flush=True)
        for probe in sorted({mutant.probe for mutant in mutants if mutant.probe}):
            verdict = self.probe(probe, None, self.numba_cache)
            if verdict["verdict"] != "missed":
                raise RuntimeError(f"probe {probe} fails on the unmutated code: {verdict['message']}")

    def probe(self, name, op, numba_cache) -> dict:
        """The probe's verdict in the current copy (tests.mutation.probes)."""
        code, output = self.run(("-m", "tests.mutation.probes", name, *([op] if op else [])), numba_cache)
        lines = output.strip().splitlines()
        if code is None:
            return {"verdict": "timeout", "named_op": "", "named": False, "message": ""}
        if code != 0 or not lines:
            message = lines[-1] if lines else f"exit {code}"
            return {"verdict": "error", "named_op": "", "named": False, "message": message}
        return json.loads(lines[-1])

    def mutate(self, mutant) -> Result:
        """Plant the mutant, run its tests and its probe, and report."""
        started = time.monotonic()
        self.fresh_tinynet(mutant)
        cache = self.root / "numba-cache-mutant"
        shutil.rmtree(cache, ignore_errors=True)
        shutil.copytree(self.numba_cache, cache)  # the mutant's compilations never reach the shared cache
        code, output = self.run((*PYTEST, *mutant.tests), cache)
        suite, killer = ("timeout", "") if code is None else ("survived", "") if code == 0 else ("killed",
                                                                                                 first_failure(output))
        if mutant.probe is None:
            verdict = {"verdict": "n/a", "named_op": "", "named": False,
                       "message": "no float64 computation reaches this code"}
        else:
            verdict = self.probe(mutant.probe, mutant.op, cache)
        return Result(mutant.id, mutant.category, suite, killer, verdict["verdict"], verdict["named_op"],
                      verdict["named"], verdict["message"], round(time.monotonic() - started, 1))


def first_failure(output: str) -> str:
    """The first 'FAILED test - reason' (or ERROR) line of pytest's short summary, or the output's last line."""
    for line in output.splitlines():
        if re.match(r"(FAILED|ERROR) ", line):
            return line.split(" ", 1)[1]
    lines = output.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def run(mutants, out: Path, timeout: float, baseline: bool = True) -> list:
    """Run every mutant, one at a time, printing a line per mutant; write the results to out (JSON)."""
    check_list(mutants)
    started = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="tinynet-mutation-") as root:
        workspace = Workspace(Path(root), timeout)
        if baseline:
            workspace.baseline(mutants)
        for k, mutant in enumerate(mutants, 1):
            result = workspace.mutate(mutant)
            results.append(result)
            print(f"[{k}/{len(mutants)}] {mutant.id}: {result.suite} {result.killer[:60]} | gradcheck "
                  f"{result.gradcheck} {result.blamed()} | {result.seconds:.0f} s", flush=True)
            write(out, results, time.monotonic() - started)  # after each mutant: an interrupted run keeps its results
    return results


def write(out: Path, results, seconds):
    """The results so far, and the seconds they took, as JSON."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seconds": round(seconds), "results": [asdict(r) for r in results]}, indent=1))


def table(results) -> str:
    """The results as a Markdown table, and a summary line."""
    rows = ["| id | category | suite | killing test | gradcheck | op it blames |", "|---|---|---|---|---|---|"]
    for r in results:
        killer = r.killer.split(" - ")[0]
        category = r.category.replace("|", "\\|")  # |x|'(0) in a Markdown cell
        rows.append(f"| {r.id} | {category} | {r.suite} | {killer} | {r.gradcheck} | {r.blamed()} |")
    killed = sum(r.suite == "killed" for r in results)
    caught = sum(r.gradcheck == "caught" for r in results)
    probed = sum(r.gradcheck != "n/a" for r in results)
    named = sum(r.named for r in results)
    survivors = ", ".join(r.id for r in results if r.suite != "killed") or "none"
    rows.append(f"\n{len(results)} mutants: the suite kills {killed}; gradcheck catches {caught} of {probed} probed "
                f"and names the op in {named}. Not killed: {survivors}.")
    return "\n".join(rows)
