"""Writing an experiment's results: config.json, metrics.json, figures, weights, summary.md.

Every file is written to a temporary name and renamed, so an interrupted run never leaves
a half-written result behind.
"""
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import tinynet as tn
from coursedata.files import atomic_write, write_atomically


def _json_default(value):
    """Make NumPy scalars, arrays and paths JSON-serializable."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


class Results:
    """The results folder of one run. Use as a context manager to record the run time.

    results = Results(out, args)            # writes config.json (args + machine)
    results.figure(fig, "curves")           # out/curves.png
    results.metrics["test_accuracy"] = 0.9  # written to metrics.json on exit
    results.summary("text")                 # out/summary.md
    results.memory_report("what", loss)     # out/memory_report.txt and .json (tn.memory_report)
    results.health(monitor)                 # out/health.png and metrics["health"] (a finished tn.monitor)
    results.health(monitor, "CNN")          # one of several runs: out/health_CNN.png and metrics["health"]["CNN"]
    """

    def __init__(self, out, args, **extra_config):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.metrics = {}
        config = {key: value for key, value in vars(args).items()}
        config.update(extra_config)
        config["command"] = " ".join([Path(sys.executable).name] + self._how_invoked() + sys.argv[1:])
        config["machine"] = {"python": platform.python_version(), "numpy": np.__version__,
                             "processor": platform.machine(), "cpus": os.cpu_count()}
        self.write_json("config.json", config)
        self._started = None

    @staticmethod
    def _how_invoked():
        """["-m", "experiments.x"] when run as a module, else ["path/to/script.py"]."""
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        return ["-m", spec.name] if spec is not None else [sys.argv[0]]

    def __enter__(self):
        self._started = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.metrics["run_seconds"] = round(time.perf_counter() - self._started, 2)
            self.write_json("metrics.json", self.metrics)
        return False

    def write_json(self, name, value):
        write_atomically(self.out / name, json.dumps(value, indent=2, default=_json_default) + "\n")

    def figure(self, fig, name, dpi=110):
        """Save a matplotlib figure as out/<name>.png and close it.

        A figure without a layout engine is cropped to what it draws (bbox_inches="tight", which draws it twice); one
        with an engine (layout="constrained") already fits its canvas, and is drawn once: 0.98 -> 0.74 CPU-s for a
        training-health panel."""
        import matplotlib.pyplot as plt

        with atomic_write(self.out / f"{name}.png") as file:
            fig.savefig(file, format="png", dpi=dpi, bbox_inches=None if fig.get_layout_engine() else "tight")
        plt.close(fig)

    def weights(self, module, name):
        """Save a Module's parameters as out/<name>.npz (tinynet.save's format)."""
        with atomic_write(self.out / f"{name}.npz") as file:
            tn.save(file, module)

    def summary(self, markdown: str):
        """Write out/summary.md."""
        write_atomically(self.out / "summary.md", markdown)

    def health(self, monitor, run=None):
        """The training-health panel of a finished tn.monitor: out/health.png and its record in metrics["health"];
        for one of several runs, named by `run`, out/health_<run>.png and metrics["health"][run] (an experiment
        records either one run or several named ones)."""
        from experiments.common.health import health_panel

        record = monitor.to_json()
        name = "health" if run is None else f"health_{run}"
        self.figure(health_panel(record, f"{self.out.name}: {name}"), name)
        if run is None:
            self.metrics["health"] = record
        else:
            self.metrics.setdefault("health", {})[run] = record

    def memory_report(self, what, output, *args):
        """What the graph of output (a Tensor, or a function called as output(*args)) saved for backward, by op and
        call site (tn.memory_report): out/memory_report.txt, headed by `what`, and .json; totals into metrics."""
        report = tn.memory_report(output, *args)
        write_atomically(self.out / "memory_report.txt", f"{what}\n\n{report}\n")
        self.write_json("memory_report.json", {"what": what, **report.to_json()})
        self.metrics["memory_report"] = {key: value for key, value in report.to_json().items() if key != "rows"}
        return report
