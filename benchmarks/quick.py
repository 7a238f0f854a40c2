"""The quick set (``continual bench``): a smaller speed run and one drifting stream, a few
minutes in all. Each writes its own section of docs/benchmarks.md (``speed-quick``,
``adaptation-quick``), leaving the full runs' tables alone.

    uv run python benchmarks/quick.py
    uv run continual bench
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Sequence

import adaptation
import speed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the quick set; return an exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    write = [] if "--no-write" not in args else ["--no-write"]
    started = time.perf_counter()
    print("speed (quick) ...", flush=True)
    speed.main(["--quick", *write])
    if importlib.util.find_spec("river") is None:
        print(
            "\nRiver is not installed: the adaptation quick set needs it for its baselines "
            "(`uv sync`: it is a dev dependency; or `pip install river`). Skipped.",
            file=sys.stderr,
        )
        return 1
    print("\nadaptation (quick) ...", flush=True)
    adaptation.main(
        [
            "--streams",
            "generate",
            "--seeds",
            "1",
            "--segment-rows",
            "1000",
            "--labels",
            "immediate",
            "--section",
            "adaptation-quick",
            "--no-figures",
            *write,
        ]
    )
    print(f"\nquick set done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
