"""Adaptation: does the loop keep the model accurate while the stream drifts?

Replays streams with known drift points through the real HTTP API of a live server:
for each row ``POST /predict``, then ``POST /feedback`` with its label (at once, after a
delay of N rows, or for half of the rows only). The harness is the clock: the
scheduler is off and the harness calls ``POST /check`` every K rows, so a run is
deterministic. The same rows, in the same order and with the same label schedule, go
to a never-retrained model and to River's ARF and Hoeffding Adaptive Tree in a worker
process, side by side.

    uv run python benchmarks/adaptation.py                # full: 3 streams x 3 seeds x 3 label variants
    uv run python benchmarks/adaptation.py --seeds 1 --streams sea --variants immediate

River is a benchmark-only dependency (in the dev group; ``pip install river`` otherwise).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import multiprocessing
import queue
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from _harness import (
    Http,
    Server,
    exit_on_sigterm,
    fmt,
    machine,
    median,
    pin_blas,
    table,
    write_section,
)
from _streams import STREAMS, Labels, Stream, build, replay_in_process, schedule

LOOP = "continual"
LEARNERS = (LOOP, "never retrained", "ARF", "HAT")
VARIANTS = ("immediate", "delayed", "half")
RECOVERY_WINDOW = 500
RECOVERY_STEP = 50
RECOVERY_MARGIN = 0.02
FALSE_ALARM_ROWS = 2000
GOAL_RECOVERY_ROWS = 2000


@dataclass
class Config:
    """One benchmark run's knobs (all on the command line)."""

    streams: list[str]
    variants: list[str]
    seeds: list[int]
    segment_rows: int = 2000
    warmup_rows: int = 1000
    check_every: int = 100
    delay: int = 500
    model: str = "logistic_regression"
    jobs: int = 1
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class CheckAt:
    """One ``POST /check`` the harness made, after ``row`` rows."""

    row: int
    decision: str
    promoted: bool | None
    reason: str


@dataclass
class Metrics:
    """One learner on one stream, seed and label variant."""

    stream: str
    seed: int
    variant: str
    learner: str
    accuracy: float
    kappa_t: float
    segments: list[float]
    first_after_drift: list[float]
    recovery: list[int | None]
    retrains: int | None = None
    promotions: int | None = None
    false_alarms: int | None = None
    seconds: float | None = None


# ---- the replay through HTTP ----------------------------------------------------------------


class FeedbackSender:
    """Posts ``/feedback`` one item at a time, in order, from a background thread."""

    def __init__(self, http: Http) -> None:
        self.http = http
        self.queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            try:
                if self.error is None:
                    pid, label = item
                    self.http.post("/feedback", {"items": [{"prediction_id": pid, "label": label}]})
            except BaseException as exc:
                self.error = exc
            finally:
                self.queue.task_done()
        self.queue.task_done()

    def send(self, prediction_id: str, label: int) -> None:
        """Queue one label."""
        self.queue.put((prediction_id, label))

    def drain(self) -> None:
        """Wait until every queued label was accepted; re-raise a failure."""
        self.queue.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop the thread and close its connection."""
        self.queue.put(None)
        self.thread.join(30)
        self.http.close()


def replay_server(stream: Stream, labels: Labels, cfg: Config) -> tuple[list[bool], list[CheckAt]]:
    """Replay ``stream`` through a fresh server; return per-row correctness and the checks."""
    env = {
        "CONTINUAL_DASHBOARD": "false",
        "CONTINUAL_COOLDOWN_SECONDS": "0",  # cooldown is wall time; the harness is the clock
        "CONTINUAL_MODEL": cfg.model,
        **cfg.env,
    }
    with Server(env) as server:
        http = server.http()
        warm = [{**x, "target": y} for x, y in stream.warmup]
        for i in range(0, len(warm), 5000):
            http.post("/data", {"rows": warm[i : i + 5000]})
        first = http.post("/check")  # no model yet: trains the first one (and sets up MLflow)
        for _ in range(3):  # on a saturated box the worker's own warm-up can time out first
            if (first.get("retrain") or {}).get("promoted"):
                break
            time.sleep(5)
            first = {"retrain": http.post("/retrain", {"reason": "benchmark: first model"})}
        else:
            raise RuntimeError(f"the warm-up did not produce a model: {first}")
        correct: list[bool] = []
        checks: list[CheckAt] = []
        ids: list[str] = []
        # feedback goes out on its own connection and thread, strictly in row order, while
        # the next rows are predicted; every feedback sent is in before each check, so
        # the server sees the same sequence as a one-request-at-a-time replay
        sender = FeedbackSender(server.http())
        try:
            for i, (x, y) in enumerate(stream.rows):
                got = http.post("/predict", {"features": x})
                correct.append(got["prediction"] == y)
                ids.append(got["prediction_id"])
                j = labels.due(i)
                if j is not None:
                    sender.send(ids[j], stream.rows[j][1])
                if (i + 1) % cfg.check_every == 0:
                    sender.drain()
                    r = http.post("/check")
                    verdict = r.get("retrain") or {}
                    checks.append(
                        CheckAt(i + 1, r["decision"], verdict.get("promoted"), r.get("reason", ""))
                    )
        finally:
            sender.close()
        http.close()
    return correct, checks


# ---- metrics ---------------------------------------------------------------------------------


def kappa_temporal(correct: Sequence[bool], stream: Stream) -> float:
    """Cohen's kappa against the no-change classifier (predict the previous row's label)."""
    labels = [stream.warmup[-1][1]] + [y for _, y in stream.rows]
    no_change = sum(a == b for a, b in itertools.pairwise(labels)) / len(stream.rows)
    accuracy = sum(correct) / len(correct)
    return (accuracy - no_change) / (1 - no_change) if no_change < 1 else float("nan")


def recovery_rows(correct: Sequence[bool], start: int, end: int, oracle: float) -> int | None:
    """Rows after a drift at ``start`` until the trailing 500-row accuracy is within 2
    points of the oracle (checked every 50 rows); ``None`` if not within the segment."""
    for t in range(start + RECOVERY_WINDOW, end + 1, RECOVERY_STEP):
        window = correct[t - RECOVERY_WINDOW : t]
        if sum(window) / len(window) >= oracle - RECOVERY_MARGIN:
            return t - start
    return None


def measure(
    stream: Stream,
    variant: str,
    learner: str,
    correct: Sequence[bool],
    checks: Sequence[CheckAt] | None,
) -> Metrics:
    """Every figure the tables show, for one learner's correctness stream."""
    segs = [sum(correct[s.start : s.end]) / (s.end - s.start) for s in stream.segments]
    firsts: list[float] = []
    recovery: list[int | None] = []
    for seg in stream.segments:
        if seg.start in stream.drifts:
            window = correct[seg.start : seg.start + RECOVERY_WINDOW]
            firsts.append(sum(window) / len(window))
            recovery.append(recovery_rows(correct, seg.start, seg.end, seg.oracle))
    m = Metrics(
        stream=stream.name,
        seed=stream.seed,
        variant=variant,
        learner=learner,
        accuracy=sum(correct) / len(correct),
        kappa_t=kappa_temporal(correct, stream),
        segments=segs,
        first_after_drift=firsts,
        recovery=recovery,
    )
    if checks is not None:
        retrains = [c.row for c in checks if c.decision == "retrain"]
        m.retrains = len(retrains)
        m.promotions = sum(1 for c in checks if c.promoted)
        m.false_alarms = sum(
            1 for at in retrains if not any(at - FALSE_ALARM_ROWS <= d < at for d in stream.drifts)
        )
    return m


# ---- running ---------------------------------------------------------------------------------


def run_one(
    stream: Stream, variant: str, cfg: Config, pool: ProcessPoolExecutor
) -> tuple[list[Metrics], list[CheckAt]]:
    """One stream, seed and label variant: the loop over HTTP, the others beside it."""
    labels = schedule(variant, len(stream.rows), stream.seed, cfg.delay)
    others: Future[dict[str, list[bool]]] = pool.submit(
        replay_in_process, stream, labels, cfg.model
    )
    started = time.perf_counter()
    correct, checks = replay_server(stream, labels, cfg)
    seconds = time.perf_counter() - started
    loop = measure(stream, variant, LOOP, correct, checks)
    loop.seconds = seconds
    out = [loop]
    for learner, got in others.result().items():
        out.append(measure(stream, variant, learner, got, None))
    print(
        f"  {stream.name} seed {stream.seed} {variant}: "
        + ", ".join(f"{m.learner} {m.accuracy:.3f}" for m in out)
        + f" | retrains {loop.retrains}, false alarms {loop.false_alarms}, {seconds:.0f} s",
        flush=True,
    )
    return out, checks


def run(cfg: Config) -> tuple[list[Metrics], dict[str, list[CheckAt]], dict[str, list[float]]]:
    """Every (stream, seed, variant); return metrics, the loop's checks, and the oracles."""
    streams = {
        (n, s): build(n, s, cfg.segment_rows, cfg.warmup_rows)
        for n in cfg.streams
        for s in cfg.seeds
    }
    oracles = {
        f"{n} seed {s}": [seg.oracle for seg in st.segments] for (n, s), st in streams.items()
    }
    tasks = [(st, v) for st in streams.values() for v in cfg.variants]
    metrics: list[Metrics] = []
    checks: dict[str, list[CheckAt]] = {}
    ctx = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(max_workers=cfg.jobs, mp_context=ctx) as pool,
        ThreadPoolExecutor(max_workers=cfg.jobs) as threads,
    ):
        futures = {threads.submit(run_one, st, v, cfg, pool): (st, v) for st, v in tasks}
        for fut, (st, v) in futures.items():
            try:
                got, seen = fut.result()
            except Exception as exc:  # one failed replay must not lose the others
                print(f"  {st.name} seed {st.seed} {v}: FAILED: {exc!r}"[:500], flush=True)
                continue
            metrics += got
            checks[f"{st.name} seed {st.seed} {v}"] = seen
    return metrics, checks, oracles


# ---- the report ------------------------------------------------------------------------------


def _recovery(values: Sequence[int | None], segment_rows: int) -> str:
    if not values:
        return "-"
    worst = max((v if v is not None else segment_rows + 1) for v in values)
    return f">{segment_rows}" if worst > segment_rows else str(worst)


def _worst(values: Sequence[int | None], segment_rows: int) -> float:
    """The slowest recovery; ``segment_rows + 1`` stands for "not within the segment"."""
    return float(max((v if v is not None else segment_rows + 1) for v in values)) if values else 0.0


def summary(metrics: Sequence[Metrics], cfg: Config) -> str:
    """Medians over seeds for each stream, label variant and learner."""
    rows = []
    for stream in cfg.streams:
        for variant in cfg.variants:
            for learner in LEARNERS:
                ms = [
                    m
                    for m in metrics
                    if (m.stream, m.variant, m.learner) == (stream, variant, learner)
                ]
                if not ms:
                    continue
                segs = "/".join(
                    fmt(median(m.segments[k] for m in ms), 2) for k in range(len(ms[0].segments))
                )
                firsts = [
                    sum(m.first_after_drift) / len(m.first_after_drift)
                    for m in ms
                    if m.first_after_drift
                ]
                worst = median(_worst(m.recovery, cfg.segment_rows) for m in ms)
                rec = (
                    "-"
                    if not ms[0].recovery
                    else (f">{cfg.segment_rows}" if worst > cfg.segment_rows else f"{worst:.0f}")
                )
                rows.append(
                    [
                        stream,
                        variant,
                        f"**{learner}**" if learner == LOOP else learner,
                        fmt(median(m.accuracy for m in ms)),
                        fmt(median(m.kappa_t for m in ms)),
                        segs,
                        fmt(median(firsts), 2) if firsts else "-",
                        rec,
                        "-"
                        if ms[0].retrains is None
                        else fmt(median(m.retrains or 0 for m in ms), 0),
                        "-"
                        if ms[0].false_alarms is None
                        else fmt(median(m.false_alarms or 0 for m in ms), 0),
                    ]
                )
    return table(
        [
            "stream",
            "labels",
            "learner",
            "prequential accuracy",
            "kappa-t",
            "per segment",
            "first 500 after drift",
            "rows to oracle-2pt (worst drift)",
            "retrains",
            "false alarms",
        ],
        rows,
    )


def goals(metrics: Sequence[Metrics], cfg: Config) -> str:
    """The three goals per stream and label variant, judged on every seed."""
    rows = []
    for stream in cfg.streams:
        for variant in cfg.variants:
            loop = sorted(
                (m for m in metrics if (m.stream, m.variant, m.learner) == (stream, variant, LOOP)),
                key=lambda m: m.seed,
            )
            arf = {
                m.seed: m
                for m in metrics
                if (m.stream, m.variant, m.learner) == (stream, variant, "ARF")
            }
            if not loop:
                continue
            gaps = [m.accuracy - arf[m.seed].accuracy for m in loop if m.seed in arf]
            beat = all(g >= 0 for g in gaps)
            alarms = sum(m.false_alarms or 0 for m in loop)
            worst = max(_worst(m.recovery, cfg.segment_rows) for m in loop)
            has_drift = bool(loop[0].recovery)
            rows.append(
                [
                    stream,
                    variant,
                    f"{min(gaps):+.3f} / {max(gaps):+.3f}" if gaps else "-",
                    "met" if beat else "**missed**",
                    str(alarms),
                    "met" if alarms == 0 else ("**missed**" if not has_drift else "(not a goal)"),
                    (f">{cfg.segment_rows}" if worst > cfg.segment_rows else f"{worst:.0f}")
                    if has_drift
                    else "-",
                    ("met" if worst <= min(GOAL_RECOVERY_ROWS, cfg.segment_rows) else "**missed**")
                    if has_drift
                    else "-",
                ]
            )
    return table(
        [
            "stream",
            "labels",
            "accuracy - ARF (min / max over seeds)",
            ">= ARF",
            "false alarms (all seeds)",
            "0 without drift",
            "worst rows to oracle-2pt",
            "<= 2,000",
        ],
        rows,
    )


def details(metrics: Sequence[Metrics]) -> str:
    """Every seed, every learner."""
    rows = [
        [
            m.stream,
            str(m.seed),
            m.variant,
            m.learner,
            fmt(m.accuracy),
            fmt(m.kappa_t),
            "/".join(fmt(s, 2) for s in m.segments),
            "/".join(fmt(f, 2) for f in m.first_after_drift) or "-",
            "/".join("-" if r is None else str(r) for r in m.recovery) or "-",
            "-" if m.retrains is None else f"{m.retrains} ({m.promotions} promoted)",
            "-" if m.false_alarms is None else str(m.false_alarms),
        ]
        for m in metrics
    ]
    return table(
        [
            "stream",
            "seed",
            "labels",
            "learner",
            "accuracy",
            "kappa-t",
            "per segment",
            "first 500 after each drift",
            "rows to oracle-2pt",
            "retrains",
            "false alarms",
        ],
        rows,
    )


def report(
    metrics: Sequence[Metrics],
    oracles: dict[str, list[float]],
    cfg: Config,
    command: str,
    seconds: float,
) -> str:
    """The section written into docs/benchmarks.md."""
    settings = ", ".join(f"{k}={v}" for k, v in sorted(cfg.env.items())) or "defaults"
    oracle_rows = [[name, "/".join(fmt(o, 3) for o in accs)] for name, accs in oracles.items()]
    done = {(m.stream, m.seed, m.variant) for m in metrics}
    missing = [
        f"{n} seed {s} {v}"
        for n in cfg.streams
        for s in cfg.seeds
        for v in cfg.variants
        if (n, s, v) not in done
    ]
    return "\n\n".join(
        [
            f"Command: `{command}` ({seconds / 60:.0f} min; {machine()}).",
            f"Streams of {cfg.warmup_rows:,} warm-up rows and 4 segments of {cfg.segment_rows:,} rows; "
            f"seeds {', '.join(map(str, cfg.seeds))}; the harness calls `POST /check` every {cfg.check_every} rows; "
            f"delayed labels arrive {cfg.delay} rows late; server model `{cfg.model}`, settings {settings} "
            "(cooldown 0 s, scheduler off, so that the harness is the clock). Figures are medians over seeds.",
            "**Goals** (each judged on every seed):",
            goals(metrics, cfg),
            "**Summary**:",
            summary(metrics, cfg),
            "Oracle accuracy per segment (best of LogisticRegression and HistGradientBoosting on 5,000 rows of the concept):",
            table(["stream", "oracle per segment"], oracle_rows),
            "<details><summary>Every seed</summary>\n\n" + details(metrics) + "\n\n</details>",
        ]
        + (
            [
                "**Not measured in this run** (the replay failed; the console shows why): "
                + ", ".join(missing)
                + "."
            ]
            if missing
            else []
        )
    )


def parse(argv: Sequence[str] | None = None) -> tuple[Config, argparse.Namespace]:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--streams", default=",".join(STREAMS), help="comma-separated: " + ", ".join(STREAMS)
    )
    p.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS)
    )
    p.add_argument("--seeds", type=int, default=3, help="how many seeds (1..N)")
    p.add_argument("--segment-rows", type=int, default=2000)
    p.add_argument("--warmup-rows", type=int, default=1000)
    p.add_argument("--check-every", type=int, default=100)
    p.add_argument("--delay", type=int, default=500)
    p.add_argument("--model", default="logistic_regression")
    p.add_argument("--jobs", type=int, default=2, help="replays run side by side (one server each)")
    p.add_argument(
        "--env", action="append", default=[], help="server setting KEY=VALUE (repeatable)"
    )
    p.add_argument("--json", type=Path, help="also write every figure as JSON here")
    p.add_argument("--render", type=Path, help="re-render the tables of a run saved with --json")
    p.add_argument(
        "--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone"
    )
    p.add_argument(
        "--section", default="adaptation", help="the docs/benchmarks.md section to write"
    )
    a = p.parse_args(argv)
    cfg = Config(
        streams=[s for s in a.streams.split(",") if s],
        variants=[v for v in a.variants.split(",") if v],
        seeds=list(range(1, a.seeds + 1)),
        segment_rows=a.segment_rows,
        warmup_rows=a.warmup_rows,
        check_every=a.check_every,
        delay=a.delay,
        model=a.model,
        jobs=a.jobs,
        env=dict(kv.split("=", 1) for kv in a.env),
    )
    return cfg, a


def _load(
    path: Path,
) -> tuple[list[Metrics], dict[str, list[CheckAt]], dict[str, list[float]], float]:
    raw = json.loads(path.read_text())
    metrics = [Metrics(**m) for m in raw["metrics"]]
    checks = {k: [CheckAt(**c) for c in v] for k, v in raw["checks"].items()}
    return metrics, checks, raw["oracles"], float(raw.get("seconds", float("nan")))


def main(argv: Sequence[str] | None = None) -> None:
    """Run (or re-render a saved run), print, and write the section."""
    cfg, args = parse(argv)
    exit_on_sigterm()
    given = list(sys.argv[1:] if argv is None else argv)
    shown, skip = [], False
    for a in given:  # the command that reproduces the figures, without output options
        if skip:
            skip = False
        elif a in ("--json", "--render"):
            skip = True
        elif a != "--no-write" and not a.startswith(("--json=", "--render=")):
            shown.append(a)
    command = " ".join(["uv run python benchmarks/adaptation.py", *shown])
    if args.render:
        metrics, checks, oracles, seconds = _load(args.render)
    else:
        if importlib.util.find_spec("river") is None:
            sys.exit(
                "River is not installed: `uv sync` (it is a dev dependency) or `pip install river`"
            )
        pin_blas()  # the oracles' fits, as the server pins its own
        started = time.perf_counter()
        metrics, checks, oracles = run(cfg)
        seconds = time.perf_counter() - started
    text = report(metrics, oracles, cfg, command, seconds)
    print()
    print(text)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "metrics": [asdict(m) for m in metrics],
                    "checks": {k: [asdict(c) for c in v] for k, v in checks.items()},
                    "oracles": oracles,
                    "seconds": seconds,
                },
                indent=1,
            )
        )
    if not args.no_write:
        title = "## Adaptation (quick set)" if args.section.endswith("quick") else "## Adaptation"
        write_section(args.section, f"{title}\n\n{text}")


if __name__ == "__main__":
    main()
