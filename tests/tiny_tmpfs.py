"""A real small or read-only file system for the disk-full and read-only tests, where the machine allows it.

Mounting needs root (and a kernel or sandbox that permits it); elsewhere the tests that use
it are skipped, and monkeypatched tests of the same paths still run. In CI (CI=true), which runs
as root, a refused mount fails the test instead.
"""
import subprocess
from contextlib import contextmanager

from conftest import require_or_skip


def mount(folder, options):
    """mount -t tmpfs -o options on folder; skip the test (fail it in CI) if that is not allowed here."""
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                          text=True)
    require_or_skip(done.returncode == 0, f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")


@contextmanager
def tmpfs(folder, size="64k"):
    """A tmpfs of `size` mounted on folder (created) for the block; yields a function that makes it read-only."""
    folder.mkdir(parents=True, exist_ok=True)
    mount(folder, f"size={size}")
    try:
        yield lambda: mount(folder, f"remount,ro,size={size}")
    finally:
        subprocess.run(["umount", str(folder)], check=True)
