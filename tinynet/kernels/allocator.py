"""Freed memory kept in the process for the next array, instead of handed back to the system and faulted in again.

glibc's malloc maps a large block (from 128 kB on, a threshold it raises, up to 32 MB, as such blocks are freed)
for itself and unmaps it at free(), and gives the top of its heap back once twice that threshold lies free there.
A network's forward allocates and frees the same large arrays every time, so every time the system maps their
pages in again, one zeroed 4 kB page at a time: the face ResNet's forward at batch 32, on two threads, took 1,100-
1,650 page faults and 14-19 ms of the system's time, 113-143 ms median; with the threshold fixed at glibc's largest
and 64 MB of free heap kept, 3 faults, 1-2 ms, 98-122 ms (issue 30, benchmarks/README.md). Arrays above 32 MB are
still mapped and unmapped. Other C libraries (musl, macOS) are left as they are.
"""
import ctypes
import functools
import platform

# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LARGEST_MMAP_THRESHOLD = 32 << 20  # glibc's upper bound on 64-bit machines (larger values are refused)
KEPT_FREE_BYTES = 64 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Tell glibc's malloc, once, to serve arrays up to 32 MB from its heap and to keep 64 MB of it free rather than
    give it back; whether it took both settings (False where the C library is not glibc)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, KEPT_FREE_BYTES))
