"""Predict latency with a challenger in shadow, and with a canary, against neither, in
one run on one live server (``continual serve`` on 127.0.0.1).

The champion and the challenger are fitted on two concepts of ``POST /generate`` (the
challenger rolled back to, so both exist). Then rounds of: nothing, shadow on, nothing,
canary on, each phase measured twice:

- sequential: single-row ``POST /predict`` over one keep-alive connection (the latency
  a caller sees, and what the shadow must not delay): p50 and p99;
- saturated: ``connections`` keep-alive connections for ``seconds`` (wrk when installed):
  requests a second and p50. Here the shadow's own predictions (a background job, in
  batches) compete for the same two cores, so this is where it costs, if anywhere.

Ratios are paired: each phase against the mean of the "off" phases of its own round
(the box's background load drifts between rounds), then the median over rounds; the
target is the shadow's sequential p50 within 1.2 times.

    uv run python benchmarks/shadow.py [--rounds 12] [--requests 500] [--seconds 2]
        [--connections 4] [--models logistic_regression] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from _harness import Server, exit_on_sigterm, fmt, machine, median, percentile, table, write_section
from _load import closed_loop

TARGET = 1.2


def _sequential(srv: Server, bodies: list[bytes], n: int) -> tuple[float, float]:
    http = srv.http()
    times: list[float] = []
    try:
        for i in range(n):
            started = time.perf_counter()
            status, _ = http.request("POST", "/predict", bodies[i % len(bodies)])
            times.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"predict answered {status}")
    finally:
        http.close()
    return percentile(times, 50) * 1000, percentile(times, 99) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print (and write) the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--models", default="logistic_regression")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    exit_on_sigterm()
    from continual.adapters.models import synthetic

    rows, _ = synthetic(500, 8, 1, 7)
    bodies = [json.dumps({"features": r}).encode() for r in rows]
    env = {"CONTINUAL_MODELS": args.models, "CONTINUAL_COOLDOWN_SECONDS": "3600"}
    results: dict[str, list[tuple[float, float, float, float]]] = {}
    with Server(env) as srv:
        http = srv.http()
        for concept in (0, 1):
            http.post("/generate", {"n_samples": 3000, "n_features": 8, "concept": concept})
            http.post("/retrain", {"reason": "benchmark"})
        champion = http.get("/model-status")["model_version"]
        other = "1" if champion != "1" else "2"
        phases = ("off", "shadow", "off", "canary")
        for _ in range(args.rounds):
            for phase in phases:
                if phase == "shadow":
                    http.post(f"/models/{other}/shadow")
                elif phase == "canary":
                    http.post(f"/models/{other}/canary")
                p50, p99 = _sequential(srv, bodies, args.requests)
                load = closed_loop(
                    srv.port,
                    "POST",
                    "/predict",
                    bodies,
                    {**http.headers},
                    args.connections,
                    args.seconds,
                )
                results.setdefault(phase, []).append((p50, p99, load.rps, load.p50_ms))
                if phase != "off":
                    trial = http.get("/trial")
                    http.post("/trial/end", {"reason": "benchmark phase over"})
                    if phase == "shadow" and trial["shadow_dropped"]:
                        print(f"  the shadow queue dropped {trial['shadow_dropped']} rows")
        http.close()
    rounds = args.rounds
    offs = results["off"]  # two per round, in order

    def paired(phase: str, i: int) -> float:
        got = results[phase]
        return median(
            got[k][i] / ((offs[2 * k][i] + offs[2 * k + 1][i]) / 2) for k in range(rounds)
        )

    rows_out = []
    for phase in ("off", "shadow", "canary"):
        got = [median(r[i] for r in results[phase]) for i in range(4)]
        rows_out.append(
            [
                phase,
                fmt(got[0]),
                fmt(got[1]),
                "1.00" if phase == "off" else fmt(paired(phase, 0), 2),
                fmt(got[2], 0),
                fmt(got[3]),
                "1.00" if phase == "off" else fmt(paired(phase, 2), 2),
            ]
        )
    header = [
        "phase",
        "sequential p50 ms",
        "sequential p99 ms",
        "p50 ÷ off",
        "saturated req/s",
        "saturated p50 ms",
        "req/s ÷ off",
    ]
    shadow_ratio = paired("shadow", 0)
    verdict = "met" if shadow_ratio <= TARGET else "missed"
    body = "\n".join(
        [
            "## Shadow and canary on the predict path",
            "",
            f"`uv run python benchmarks/shadow.py --rounds {args.rounds} --requests "
            f"{args.requests} --seconds {args.seconds:g} --connections {args.connections} "
            f"--models {args.models}`: single-row predicts of 8 features; medians over "
            f"{args.rounds} rounds, ratios paired with the round's own off phases; {machine()}.",
            "",
            table(header, rows_out),
            "",
            f"Target: the sequential p50 with a shadow within {TARGET} times without: "
            f"{shadow_ratio:.2f}, {verdict}.",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("shadow", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
