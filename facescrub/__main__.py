"""Command line: python -m facescrub download | prepare | stats.

  download  fetch the six actors' originals (or --actors ...) into --store, verify SHA-256,
            write <store>/manifest.csv, print a summary. --mirror DIR is looked at before
            the network; --proxy URL sends every request through an HTTP proxy (checked
            once before any request; if it fails the run stops and writes no manifest);
            --skip-failed does not ask again what the last manifest says failed for good;
            --verify re-hashes the store first and quarantines (moves to <store>/quarantine/)
            each file whose bytes do not match its name, so that it is fetched again.
            Only public addresses are connected to: a URL or redirect to a loopback, private,
            link-local, multicast or reserved address is refused (status refused_address)
            unless --allow-private-addresses [NETWORK ...] allows it (e.g. a local mirror).
            With --proxy the proxy resolves host names, so what is checked is the proxy's
            own address and the URLs whose host is an address literal or localhost.
  prepare   re-hash and crop what is in --store (and --mirror) into the cache (--size,
            --color); print the crops per actor and split, and each file not used (bytes
            not matching the name: quarantined; or not a croppable image).
  stats     list lines and available originals per actor in --store (and --mirror).
"""
import argparse
import ipaddress
import sys
import time
from collections import Counter
from pathlib import Path

from coursedata.cli import DEBUG_HELP, bounded, run_main
from coursedata.paths import cache_dir

from .dataset import available_faces, load_faces
from .download import DownloadSettings, download, iter_manifest, known_failures, make_session, summary, write_manifest
from .lists import ACTORS, StreamedList, listed_actors, read_lists
from .network import EVERYWHERE
from .store import Store


def parse_args(argv):
    """The parsed command line; exits with a message on unknown actors."""
    parser = argparse.ArgumentParser(prog="python -m facescrub", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["download", "prepare", "stats"])
    parser.add_argument("--actors", nargs="+", default=list(ACTORS), help="actor names (default: the course's six)")
    parser.add_argument("--lists", nargs="+", type=Path, help="URL list files (default: the course's two lists)")
    parser.add_argument("--store", type=Path, default=cache_dir() / "facescrub" / "originals",
                        help="where originals are stored as <sha256>.<ext>")
    parser.add_argument("--mirror", type=Path, help="a folder of originals named <sha256>.<ext>, used first")
    parser.add_argument("--proxy", help="an HTTP proxy URL for every request")
    defaults = DownloadSettings()
    parser.add_argument("--allow-private-addresses", nargs="*", type=ipaddress.ip_network, metavar="NETWORK",
                        help="also connect to these non-public networks (e.g. 192.168.1.0/24); with no NETWORK, "
                             "to any address (a local mirror or test proxy)")
    seconds = bounded(float, above=0)
    parser.add_argument("--workers", type=bounded(int, 1, 256), default=defaults.workers, help="1..256")
    parser.add_argument("--connect-timeout", type=seconds, default=defaults.connect_timeout,
                        help="seconds per connection, DNS included")
    parser.add_argument("--timeout", type=seconds, default=defaults.read_timeout, help="read timeout per request (s)")
    parser.add_argument("--deadline", type=seconds, default=defaults.deadline,
                        help="total time per URL, retries included (s)")
    parser.add_argument("--retries", type=bounded(int, 0, 10), default=defaults.retries,
                        help="for 5xx and connection errors (0..10)")
    parser.add_argument("--skip-failed", action="store_true",
                        help="do not ask again for the URLs that <store>/manifest.csv records as failed for good "
                             "(HTTP 4xx, hash mismatch, bad URL, too large, too many redirects); timeouts, "
                             "connection errors and 5xx are tried again")
    parser.add_argument("--verify", action="store_true",
                        help="download: re-hash the stored files first; quarantine and fetch again what does not match")
    parser.add_argument("--size", type=bounded(int, 8, 512), default=32, help="crop side in pixels (8..512)")
    parser.add_argument("--color", action="store_true")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    args = parser.parse_args(argv)
    unknown = set(args.actors) - listed_actors(args.lists)
    if unknown:
        parser.error(f"not in the lists: {sorted(unknown)}")
    return args


def previous_failures(manifest):
    """known_failures() of an earlier run's manifest; exits with a message if it is not one."""
    try:
        return known_failures(iter_manifest(manifest))
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as error:
        sys.exit(f"{manifest} is not a manifest written by `python -m facescrub download` ({error}); "
                 f"move it away or leave out --skip-failed")


def main(argv=None):
    args = parse_args(argv)
    stores = [Store(args.store)] + ([Store(args.mirror, read_only=True)] if args.mirror else [])
    if args.command == "download":
        allowed = EVERYWHERE if args.allow_private_addresses == [] else tuple(args.allow_private_addresses or ())
        settings = DownloadSettings(workers=args.workers, connect_timeout=args.connect_timeout,
                                    read_timeout=args.timeout, deadline=args.deadline, retries=args.retries,
                                    allowed_networks=allowed)
        faces, manifest = StreamedList(args.lists, actors=args.actors), args.store / "manifest.csv"
        known = previous_failures(manifest) if args.skip_failed and manifest.exists() else {}
        session = make_session(args.proxy, settings)
        for problem in stores[0].verify_all() if args.verify else []:
            print(f"quarantined: {problem}")
        started = time.monotonic()
        rows = download(faces, args.store, args.mirror, session, settings, known_failures=known, shared=faces.shared)
        counts = write_manifest(rows, manifest)
        print(summary(counts, faces.skipped, time.monotonic() - started))
        if args.skip_failed:
            print(f"not asked again (failed for good in the last manifest): "
                  f"{sum(count for (_, _, source), count in counts.items() if source == 'manifest')} lines")
        print(f"manifest: {manifest}")
    elif args.command == "prepare":
        dataset = load_faces(args.size, args.color, args.actors, stores=stores, lists=args.lists)
        print(f"{args.size}x{args.size} {'RGB' if args.color else 'gray'} crops per actor:")
        for index, actor in enumerate(dataset.actors):
            counts = {name: int((split.y == index).sum()) for name, split in
                      (("train", dataset.train), ("val", dataset.val), ("test", dataset.test))}
            print(f"  {actor:<18} " + "  ".join(f"{name} {count:>4}" for name, count in counts.items()))
        print(f"  {'total':<18} train {len(dataset.train.y):>4}  val {len(dataset.val.y):>4}  "
              f"test {len(dataset.test.y):>4}")
        for error in dataset.unreadable.values():
            print(f"not used: {error}", file=sys.stderr)
    else:
        available = Counter(photo.actor for photo in available_faces(args.actors, stores, args.lists))
        listed = Counter(face.actor for face in read_lists(args.lists, actors=args.actors).faces)
        for actor in args.actors:
            print(f"{actor:<18} listed faces {listed[actor]:>4}   available {available[actor]:>4}")


if __name__ == "__main__":
    run_main(main)
