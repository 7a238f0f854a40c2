"""The C heap of the server process (glibc's malloc, through ctypes), its only tuner.

glibc raises its mmap threshold each time a large block that was mmapped is freed (up
to 32 MiB, and the trim threshold to twice that), so after the first few request bodies
and batch arrays every later one (1-3 MiB each at 10,000 rows) comes from the heap and
the heap keeps what they freed: the server grew by about 75 MiB over 400,000 ingested
rows here, none of it live. Fixed thresholds turn that adjustment off. At glibc's own
starting values (128 KiB both) every such block was mmapped and returned on free, and
each 10,000-row batch then faulted in 6,000-8,000 fresh pages (31 MiB, zeroed by the
kernel): about a fifth of its CPU. Blocks up to 4 MiB (a 10,000-row JSON body is 3.1 MB)
now come from the heap, which keeps at most 4 MiB free at its top: 50-1,600 faults a
batch, JSON ingest 0.100 -> 0.080 s and CSV 0.088 -> 0.074 s a batch (server CPU, this
box; 16 MiB until 2026-12-05: 4 MiB measured the same ingest ratios and 5 MiB less). One arena: glibc gives each
thread that allocates (the ingest and check threads) an arena of its own, which keeps
what that thread freed; on the one heap the server was 10-15 MiB smaller after a
million ingested rows, ingest no slower. Not glibc (macOS, musl): nothing to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 4 * 1024 * 1024  # blocks above this are mapped, and unmapped on free
TRIM_THRESHOLD = 4 * 1024 * 1024  # free memory above this at the heap's top is returned
ARENAS = 1  # every thread allocates from the main heap (see the docstring)


def fix_thresholds() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; whether it applied."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return (
        bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
        and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        and bool(mallopt(M_ARENA_MAX, ARENAS))
    )
