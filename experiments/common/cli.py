"""The command line every experiment takes: --seed, --out, --quick and --debug (run_main and bounded,
shared with facescrub, are in coursedata.cli)."""
import argparse
from pathlib import Path

from coursedata.cli import DEBUG_HELP


def experiment_parser(name: str, description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with the flags shared by all experiments.

    --seed: seeds every random choice (same seed, same numbers).
    --out: results folder (default results/<name>).
    --quick: a tiny run on a slice of the data, for smoke tests (seconds).
    --debug: a traceback instead of a one-line error (see run_main).
    """
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=Path("results") / name, help="results folder")
    parser.add_argument("--quick", action="store_true", help="tiny run on a data slice (smoke test)")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    return parser
