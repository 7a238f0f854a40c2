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
