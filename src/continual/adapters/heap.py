"""The C heap of the server process (glibc's malloc, through ctypes), its only tuner.

glibc raises its mmap threshold each time a large block that was mmapped is freed (up
to 32 MiB), so that after the first few request bodies and batch arrays every later
one (1-2 MiB each at 10,000 rows) comes from the heap, and the heap keeps what they
freed: the server grew by about 75 MiB over 400,000 ingested rows here, none of it
live. A fixed threshold (and trim threshold) turns that adjustment off: blocks above
128 KiB are mmapped and returned on free (about half that growth went). Not glibc
(macOS, musl): nothing to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
THRESHOLD = 128 * 1024  # glibc's own starting value, kept fixed


def keep_large_blocks_mapped() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; whether it applied."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD))
