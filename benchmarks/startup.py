"""What a command costs before it starts: ``uv run continual --version`` and ``uv run
continual serve`` to ``/health``, against the same commands run from the virtual
environment directly (the floor), and the first import of what the training worker loads.

Run it right after a fresh ``uv sync`` to see the first run (Python writing
``__pycache__`` as it imports, unless uv compiled it all) apart from the later ones;
``--compare`` adds ``uv run`` as it was with ``[tool.uv] compile-bytecode = true``:

    rm -rf .venv && uv sync && uv run --no-sync python benchmarks/startup.py
    rm -rf .venv && uv sync --compile-bytecode && uv run --no-sync python benchmarks/startup.py --compare

It writes its table into docs/benchmarks.md (section ``startup``); ``--no-write`` only
prints. ``--repeats N`` (default 5) runs of each command; every server is a fresh data
directory, stopped by its PID.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from _harness import ROOT, free_port, machine, median, stop_pid, table, write_section

VENV_BIN = Path(sys.executable).parent
# what the training worker imports when it warms up (services/worker.py)
WORKER_IMPORTS = "import mlflow, sklearn.ensemble, sklearn.linear_model"


def timed(argv: Sequence[str], env: Mapping[str, str]) -> float:
    """Seconds for one command to finish (it must succeed)."""
    started = time.perf_counter()
    subprocess.run(
        argv, cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True, timeout=600
    )
    return time.perf_counter() - started


def to_health(argv: Sequence[str], extra: Mapping[str, str]) -> float:
    """Seconds from starting ``argv serve`` in a fresh data directory to ``200 /health``."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "API_KEY"}
        env.update({"CONTINUAL_PORT": str(port), "CONTINUAL_DATA_DIR": str(Path(tmp) / "data")})
        env.update(extra)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*argv, "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                        return time.perf_counter() - started
                except OSError:
                    time.sleep(0.02)
            raise RuntimeError(f"{' '.join(argv)} serve exited with {proc.returncode}")
        finally:
            stop_pid(proc)


class Case(NamedTuple):
    """One command to time; ``floor`` is the direct-script case it is compared with."""

    name: str
    argv: Sequence[str]
    serve: bool
    floor: str
    env: Mapping[str, str] = {}


def cases(uv: str, compare: bool) -> list[Case]:
    """The commands, the README's first: its first-round figure is what a new user sees."""
    script = [str(VENV_BIN / "continual")]
    serve_floor, cli_floor = (
        "`.venv/bin/continual serve` to /health (floor)",
        "`.venv/bin/continual --version` (floor)",
    )
    old = {"UV_COMPILE_BYTECODE": "1"}  # what `[tool.uv] compile-bytecode = true` did
    got = [
        Case("`uv run continual serve` to /health", [uv, "run", "continual"], True, serve_floor),
        Case(serve_floor, script, True, serve_floor),
        Case(
            "`uv run continual --version`", [uv, "run", "continual", "--version"], False, cli_floor
        ),
        Case(
            "`uv run --no-sync continual --version`",
            [uv, "run", "--no-sync", "continual", "--version"],
            False,
            cli_floor,
        ),
        Case(cli_floor, [*script, "--version"], False, cli_floor),
        Case(
            f"`python -c '{WORKER_IMPORTS}'` (the training worker's imports)",
            [sys.executable, "-c", WORKER_IMPORTS],
            False,
            "",
        ),
    ]
    if compare:
        got += [
            Case(
                "`UV_COMPILE_BYTECODE=1 uv run continual serve` to /health (as before)",
                [uv, "run", "continual"],
                True,
                serve_floor,
                old,
            ),
            Case(
                "`UV_COMPILE_BYTECODE=1 uv run continual --version` (as before)",
                [uv, "run", "continual", "--version"],
                False,
                cli_floor,
                old,
            ),
        ]
    return got


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table, write it into docs/benchmarks.md unless ``--no-write``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also time `uv run` with UV_COMPILE_BYTECODE=1, as `[tool.uv] compile-bytecode` "
        "did (it compiles the whole environment: use it on a compiled one)",
    )
    parser.add_argument("--no-write", action="store_true")
    opts = parser.parse_args(argv)
    if opts.repeats < 2:
        parser.error("--repeats must be at least 2: the first round is reported apart")
    uv = shutil.which("uv")
    if uv is None:
        print("uv is not on PATH", file=sys.stderr)
        return 2
    # where Python may not write bytecode (PYTHONDONTWRITEBYTECODE, as on the box these
    # figures come from), only what was compiled at install is ever fast to import
    site = Path(sysconfig.get_paths()["purelib"])
    compiled = sum(1 for _ in site.rglob("*.pyc"))
    writes = "no (PYTHONDONTWRITEBYTECODE is set)" if sys.dont_write_bytecode else "yes"
    todo = cases(uv, opts.compare)
    runs: dict[str, list[float]] = {case.name: [] for case in todo}
    for round_ in range(opts.repeats):
        for case in todo:
            took = to_health(case.argv, case.env) if case.serve else timed(case.argv, case.env)
            runs[case.name].append(took)
        print(f"round {round_ + 1}/{opts.repeats} done", flush=True)
    later = {name: median(got[1:]) for name, got in runs.items()}
    rows = [
        [
            case.name,
            f"{runs[case.name][0]:.2f}",
            f"{later[case.name]:.2f}",
            f"{later[case.name] / later[case.floor]:.1f}" if case.floor else "-",
        ]
        for case in todo
    ]
    flags = " --compare" if opts.compare else ""
    body = "\n\n".join(
        [
            "## Start-up of a command",
            f"Command: `uv run --no-sync python benchmarks/startup.py --repeats {opts.repeats}{flags}` "
            f"({machine()}). Seconds; each server in a fresh data directory with the defaults "
            "(dashboard on). *First* is the first round, *later* the median of the others. "
            f"Compiled bytecode files in site-packages at the start: {compiled:,}; Python may "
            f"write bytecode: {writes}.",
            table(["command", "first s", "later s (median)", "÷ floor (later)"], rows),
        ]
    )
    print("\n" + body)
    if not opts.no_write:
        write_section("startup", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
