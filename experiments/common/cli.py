"""The command line every experiment takes: --seed, --out, --quick."""
import argparse
from pathlib import Path


def experiment_parser(name: str, description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with the flags shared by all experiments.

    --seed: seeds every random choice (same seed, same numbers).
    --out: results folder (default results/<name>).
    --quick: a tiny run on a slice of the data, for smoke tests (seconds).
    """
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=Path("results") / name, help="results folder")
    parser.add_argument("--quick", action="store_true", help="tiny run on a data slice (smoke test)")
    return parser
