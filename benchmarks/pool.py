"""The challenger pool's cost: a retrain of the default pool end to end, against the
bare fits of the same families on the same rows.

A live ``continual serve`` gets ``--rows`` labelled rows of ``--features`` features
(``make_classification``), then ``POST /retrain`` runs ``--repeats`` times: read the
rows, the window search of every family in ``CONTINUAL_MODELS``, the gate, an MLflow
parent run with a nested run per family, the model logged and registered, the swap.
The floor is one plain fit of each family on the same rows in this process (one BLAS
thread, as the worker), with no search, no MLflow and no HTTP. The target (issue 11):
the default pool on 5,000 rows of 20 features within 2 s end to end.

    uv run python benchmarks/pool.py            # writes its section of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from _harness import Server, exit_on_sigterm, fmt, machine, median, table, write_section

TARGET_SECONDS = 2.0


def bare_fits(families: Sequence[str], rows: list[dict[str, float]], labels: list[int]) -> float:
    """Seconds for one plain fit of each family on all the rows, in this process."""
    from continual.adapters.models import fit
    from continual.core.schema import infer_schema

    schema = infer_schema({**rows[0], "target": labels[0]}, "target", "rows[0]")
    started = time.perf_counter()
    for family in families:
        fit(family, schema, rows, labels, 0)  # type: ignore[arg-type]
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> str:
    """Run the benchmark, print its table and write it into docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="logistic_regression,hist_gradient_boosting")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    from continual.adapters.models import one_thread, synthetic

    one_thread()  # as the worker: one OpenMP and BLAS thread, set before sklearn loads them

    rows, labels = synthetic(args.rows, args.features, 0, 7)
    families = args.models.split(",")
    env = {"CONTINUAL_MODELS": args.models, "CONTINUAL_COOLDOWN_SECONDS": "0"}
    walls: list[float] = []
    fits: list[float] = []
    winners: list[str] = []
    with Server(env) as server:
        http = server.http(timeout=600)
        for start in range(0, len(rows), 5000):
            chunk = [
                {**r, "target": y}
                for r, y in zip(
                    rows[start : start + 5000], labels[start : start + 5000], strict=True
                )
            ]
            http.post("/data", {"rows": chunk})
        first = time.perf_counter()
        http.post("/retrain", {"reason": "benchmark warm-up"})  # MLflow creates its tables
        first_seconds = time.perf_counter() - first
        for _ in range(args.repeats):
            started = time.perf_counter()
            got = http.post("/retrain", {"reason": "benchmark"})
            walls.append(time.perf_counter() - started)
            fits.append(sum(c["fit_seconds"] for c in got["candidates"]))
            winners.append(got["model_type"])
    bare = median(bare_fits(families, rows, labels) for _ in range(3))
    wall = median(walls)
    body = "\n".join(
        [
            "### The challenger pool: one retrain end to end",
            "",
            f"Command: `uv run python {' '.join(['benchmarks/pool.py', *sys.argv[1:]])}`. "
            f"{machine()}.",
            "",
            table(
                [
                    "rows x features",
                    "pool",
                    "retrain (median)",
                    "window-search fits",
                    "bare fits",
                    "ratio",
                    "target",
                ],
                [
                    [
                        f"{args.rows:,} x {args.features}",
                        args.models.replace(",", ", "),
                        f"{fmt(wall, 2)} s",
                        f"{fmt(median(fits), 2)} s",
                        f"{fmt(bare, 2)} s",
                        f"{fmt(wall / bare, 1)}x",
                        f"{'met' if wall <= TARGET_SECONDS else 'missed'} (<= {TARGET_SECONDS:.0f} s)",
                    ]
                ],
            ),
            "",
            f"{args.repeats} retrains after one warm-up ({fmt(first_seconds, 1)} s: the worker's "
            f"imports and MLflow's tables). Winners: {', '.join(sorted(set(winners)))}. A retrain "
            "is the rows read, every family's window search, the gate, an MLflow parent run with "
            "a nested run per family, the winner's model logged and registered, and the swap; "
            "the bare fits are one plain fit per family on the same rows in-process.",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("pool", body)
    return body


if __name__ == "__main__":
    main()
