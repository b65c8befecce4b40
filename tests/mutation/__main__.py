"""python -m tests.mutation [--only ID ...] [--list] [--jobs 1] [--out PATH] [--timeout S]: see tests/README.md."""
import argparse
import os
import sys
import time
from pathlib import Path

from .mutants import MUTANTS
from .runner import PatchError, check_list, run, table


def default_out() -> Path:
    """Beside the project's other caches (TINYNET_CACHE, else ~/.cache/tinynet), never in the repo."""
    return Path(os.environ.get("TINYNET_CACHE", Path.home() / ".cache" / "tinynet")) / "mutation.json"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--jobs", type=int, default=1, choices=[1],
                        help="mutants run one at a time (the course machine has 2 cores; pytest may not share them)")
    parser.add_argument("--out", type=Path, default=default_out(), help="the JSON results (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant's tests (default: %(default)s)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated tests and probes")
    args = parser.parse_args(argv)
    by_id = {m.id: m for m in MUTANTS}
    unknown = sorted(set(args.only or ()) - set(by_id))
    if unknown:
        parser.error(f"unknown mutant ids {unknown}: see --list")
    mutants = [by_id[i] for i in args.only] if args.only else list(MUTANTS)
    if args.list:
        for m in mutants:
            print(f"{m.id:34} tinynet/{m.file:26} {m.category}")
        return 0
    try:
        check_list(mutants)
    except PatchError as error:
        print(error, file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        results = run(mutants, args.out, args.timeout, baseline=not args.no_baseline)
    except KeyboardInterrupt:
        print("interrupted: the repo was never modified (only temporary copies were)", file=sys.stderr)
        return 130
    print(table(results))
    print(f"\n{time.monotonic() - started:.0f} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
