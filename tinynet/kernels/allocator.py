"""Freed memory kept in the process for the next array, instead of handed back to the system and faulted in again.

glibc's malloc maps a large block (from 128 kB on, a threshold it raises, up to 32 MB, as such blocks are freed)
for itself and unmaps it at free(), and gives the top of its heap back once twice that threshold lies free there.
A network's forward allocates and frees the same large arrays every time, so every time the system maps their
pages in again, one zeroed 4 kB page at a time. So blocks up to 1 GB come from the heap, and up to 1 GB of it stays
free for the next ones: a process's resident memory stays near its peak while it runs. Measured on two threads
(issue 30, benchmarks/README.md): the face ResNet's forward at batch 32 took 1,653 page faults and 9-20 ms of the
system's time a forward before, 4 and 1-2 ms after; seed 004's SGD step 8,700-9,600 faults and 75-80 ms (its 139 MB
fc weight gradient, mapped afresh every step), 1 fault and 2-7 ms after. Other C libraries (musl, macOS) are left
as they are.
"""
import ctypes
import functools
import platform

# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEPT_BYTES = 1 << 30  # blocks up to this size from the heap, and as much of it kept free


@functools.cache
def keep_freed_memory() -> bool:
    """Tell glibc's malloc, once, to serve blocks up to KEPT_BYTES from its heap and to keep as much of it free rather
    than give it back; whether it took both settings (False where the C library is not glibc)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, KEPT_BYTES)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEPT_BYTES))
