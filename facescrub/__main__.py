"""Command line: python -m facescrub download | prepare | stats.

  download  fetch the six actors' originals (or --actors ...) into the store, verify SHA-256,
            write manifest.csv, print a summary. --mirror DIR is looked at before the network.
  prepare   crop and resize into the cache (--size, --color), report unreadable files.
  stats     counts per actor and split of what is available now.
"""
import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from tinynet.paths import cache_dir

from .dataset import load_faces, originals
from .download import DownloadSettings, download, make_session, summary, write_manifest
from .lists import ACTORS, read_lists
from .store import Store


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m facescrub", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["download", "prepare", "stats"])
    parser.add_argument("--actors", nargs="+", default=list(ACTORS), help="actor names (default: the course's six)")
    parser.add_argument("--store", type=Path, default=cache_dir() / "facescrub" / "originals",
                        help="where originals are stored as <sha256>.<ext>")
    parser.add_argument("--mirror", type=Path, help="a folder of originals named <sha256>.<ext>, used first")
    parser.add_argument("--proxy", help="an HTTP proxy URL for every request")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=10.0, help="read timeout per request (s)")
    parser.add_argument("--deadline", type=float, default=30.0, help="total time per URL, retries included (s)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--color", action="store_true")
    args = parser.parse_args(argv)
    unknown = set(args.actors) - {face.actor for face in read_lists(actors=None).faces}
    if unknown:
        parser.error(f"not in the lists: {sorted(unknown)}")

    if args.command == "download":
        settings = DownloadSettings(workers=args.workers, read_timeout=args.timeout, deadline=args.deadline)
        report = read_lists(actors=args.actors)
        started = time.monotonic()
        rows = download(report.faces, args.store, args.mirror, make_session(args.proxy, settings), settings)
        write_manifest(rows, args.store / "manifest.csv")
        print(summary(rows, report.skipped, time.monotonic() - started))
        print(f"manifest: {args.store / 'manifest.csv'}")
    elif args.command == "prepare":
        stores = [Store(args.store)] + ([Store(args.mirror)] if args.mirror else [])
        dataset = load_faces(args.size, args.color, args.actors, stores=stores if args.mirror else None)
        print(f"train {len(dataset.train.y)}, val {len(dataset.val.y)}, test {len(dataset.test.y)} crops of "
              f"{args.size}x{args.size} {'RGB' if args.color else 'gray'}")
        for path, error in dataset.unreadable.items():
            print(f"unreadable: {path}: {error}", file=sys.stderr)
    else:
        counts = Counter(photo.actor for photo in originals(args.actors))
        listed = Counter(face.actor for face in read_lists(actors=args.actors).faces)
        for actor in args.actors:
            print(f"{actor:<18} listed {listed[actor]:>4}   available {counts[actor]:>4}")


if __name__ == "__main__":
    main()
