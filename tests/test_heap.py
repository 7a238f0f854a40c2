"""The server's C heap: request-sized blocks are reused, not faulted in again each time."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import ctypes, resource, sys
from continual.adapters import heap
if sys.argv[1] == "fixed":
    assert heap.fix_thresholds()
else:  # every block over 128 KiB mapped and unmapped, as the server did before
    libc = ctypes.CDLL(None)
    libc.mallopt(heap.M_MMAP_THRESHOLD, 128 * 1024)
    libc.mallopt(heap.M_TRIM_THRESHOLD, 128 * 1024)
def body():  # a 3 MB request body, written through, then freed
    block = bytearray(3_000_000)
    block[::4096] = b"x" * len(block[::4096])
body()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    body()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_request_sized_blocks_are_reused_from_the_heap() -> None:
    pages = 3_000_000 // 4096
    assert faults("mapped") > 10 * pages  # each body faulted in afresh
    assert faults("fixed") < pages  # the heap's own pages, reused


THREADS = """
import re, sys, threading
from pathlib import Path
from continual.adapters import heap
if sys.argv[1] == "fixed":
    assert heap.fix_thresholds()
def heap_kib():
    m = re.search(r"^([0-9a-f]+)-([0-9a-f]+) .*\\[heap\\]$", Path("/proc/self/maps").read_text(), re.M)
    return (int(m.group(2), 16) - int(m.group(1), 16)) // 1024
kept = []
def work():  # what a request's thread allocates: many small blocks, kept a while
    kept.extend(bytearray(2000) for _ in range(10_000))
before = heap_kib()
t = threading.Thread(target=work)
t.start()
t.join()
print(heap_kib() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_threads_allocate_from_the_one_heap() -> None:
    """With the thresholds fixed, a worker thread's blocks come from the main heap, whose
    free memory is trimmed, not from an arena of its own (each kept what its thread freed:
    about 15 MiB of the server after a million ingested rows)."""

    def growth(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", THREADS, mode], capture_output=True, text=True, check=True
        )
        return int(out.stdout)

    assert growth("fixed") > 15_000  # 20 MB of blocks, in the heap
    assert growth("default") < 5_000  # in the thread's own arena
