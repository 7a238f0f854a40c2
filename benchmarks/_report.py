"""The adaptation section of docs/benchmarks.md: targets, a summary per stream and label
variant (means over seeds) with the median over streams, the families the loop
promoted, the oracles, every seed, and the pictures."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from _harness import fmt, table
from _metrics import GOAL_PER_DRIFT, GOAL_RECOVERY_ROWS, Metrics
from _peers import PEERS
from _plot import SHORT
from _streams import Stream
from _synth import STATIONARY

LOOP = "continual"
PENDING = "*pending*"
NEVER = {"logistic_regression": "never LR", "hist_gradient_boosting": "never HGB"}


@dataclass
class Run:
    """Everything one run measured."""

    streams: dict[tuple[str, int], Stream]
    variants: list[str]
    metrics: list[Metrics]
    peer_seconds: dict[str, float] = field(default_factory=dict)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _pick(run: Run, stream: str, variant: str, learner: str) -> list[Metrics]:
    return [
        m for m in run.metrics if (m.stream, m.variant, m.learner) == (stream, variant, learner)
    ]


def _acc(run: Run, stream: str, variant: str, learner: str) -> float:
    return _mean([m.accuracy for m in _pick(run, stream, variant, learner)])


def _best_peer(run: Run, stream: str, variant: str) -> tuple[str, float]:
    got = [(p, _acc(run, stream, variant, p)) for p in PEERS]
    got = [(p, a) for p, a in got if a == a]
    return max(got, key=lambda pa: pa[1]) if got else ("-", float("nan"))


def _rec(values: Sequence[int | None], limit: int) -> str:
    """Mean and worst rows to recover; ``>limit`` for a drift not recovered in its segment."""
    if not values:
        return "-"
    worst = max(limit + 1 if v is None else v for v in values)
    shown = f">{limit}" if worst > limit else str(worst)
    done = [v for v in values if v is not None]
    mean = f"{_mean(done):.0f}" if done else "-"
    return f"{mean} / {shown}"


def _names(run: Run) -> list[str]:
    return list(dict.fromkeys(name for name, _ in run.streams))


def _segment_rows(run: Run, name: str) -> int:
    stream = next(s for (n, _), s in run.streams.items() if n == name)
    return stream.segments[0].end - stream.segments[0].start


def summary(run: Run) -> str:
    """Means over seeds per stream and label variant; the median over streams."""
    rows: list[list[str]] = []
    for variant in run.variants:
        gaps: list[float] = []
        cols: dict[str, list[float]] = {}
        for name in _names(run):
            loop = _pick(run, name, variant, LOOP)
            peer, best = _best_peer(run, name, variant)
            accs = {p: _acc(run, name, variant, p) for p in (LOOP, *NEVER.values(), *PEERS)}
            for k, v in {**accs, "best": best}.items():
                cols.setdefault(k, []).append(v)
            if loop and best == best:
                gaps.append(accs[LOOP] - best)
            limit = _segment_rows(run, name)
            rows.append(
                [
                    name,
                    variant,
                    f"**{fmt(accs[LOOP])}**" if loop else PENDING,
                    *(fmt(accs[n]) for n in NEVER.values()),
                    *(fmt(accs[p]) for p in PEERS),
                    f"{fmt(best)} ({peer})",
                    (f"{accs[LOOP] - best:+.3f}" if best == best else "-") if loop else PENDING,
                    fmt(_mean([m.retrains or 0 for m in loop]), 1) if loop else PENDING,
                    fmt(_mean([m.unexplained or 0 for m in loop]), 1) if loop else PENDING,
                    (
                        "-"
                        if not run.streams[(name, loop[0].seed)].changes
                        else fmt(max(max(m.per_drift) for m in loop), 0)
                    )
                    if loop
                    else PENDING,
                    _rec([r for m in loop for r in m.recovery], limit) if loop else PENDING,
                    _rec([r for m in _pick(run, name, variant, peer) for r in m.recovery], limit),
                ]
            )
        med = {k: statistics.median(v) for k, v in cols.items() if all(x == x for x in v)}
        rows.append(
            [
                "**median over streams**",
                variant,
                fmt(med.get(LOOP)) if LOOP in med else PENDING,
                *(fmt(med.get(n)) for n in NEVER.values()),
                *(fmt(med.get(p)) for p in PEERS),
                fmt(med.get("best")),
                f"{statistics.median(gaps):+.3f}"
                if gaps
                else (PENDING if LOOP not in med else "-"),
                *([""] * 5),
            ]
        )
    return table(
        [
            "stream",
            "labels",
            "loop",
            *NEVER.values(),
            *PEERS,
            "best peer",
            "loop - best peer",
            "retrains",
            "without a drift near",
            "per drift (most)",
            "loop: rows to recover (mean / worst)",
            "best peer: rows to recover",
        ],
        rows,
    )


def targets(run: Run) -> str:
    """The issue's targets, per stream and label variant."""
    rows = []
    for variant in run.variants:
        gaps = []
        for name in _names(run):
            loop = _pick(run, name, variant, LOOP)
            if not loop:
                continue
            _, best = _best_peer(run, name, variant)
            gap = _acc(run, name, variant, LOOP) - best
            if gap == gap:
                gaps.append(gap)
            stream = run.streams[(name, loop[0].seed)]
            abrupt = [k for k, d in enumerate(stream.changes) if d.abrupt]
            recs = [m.recovery[k] for m in loop for k in abrupt]
            fast = sum(1 for r in recs if r is not None and r <= GOAL_RECOVERY_ROWS)
            unexplained = sum(m.unexplained or 0 for m in loop)
            most = max((max(m.per_drift) for m in loop if m.per_drift), default=0)
            rows.append(
                [
                    name,
                    variant,
                    f"{gap:+.3f} {'met' if gap >= 0 else '**missed**'}" if gap == gap else "-",
                    f"{unexplained} {'met' if unexplained == 0 else '**missed**'}"
                    if name in STATIONARY
                    else str(unexplained),
                    f"{most} {'met' if most <= GOAL_PER_DRIFT else '**missed**'}"
                    if stream.changes
                    else "-",
                    f"{fast}/{len(recs)} {'met' if fast == len(recs) else '**missed**'}"
                    if recs
                    else "-",
                ]
            )
        if gaps:
            med = statistics.median(gaps)
            rows.append(
                [
                    "**median over streams**",
                    variant,
                    f"{med:+.3f} {'met' if med > 0 else '**missed**'}",
                    "",
                    "",
                    "",
                ]
            )
    if not rows:
        return PENDING + " (the loop's figures: see the command below)"
    return table(
        [
            "stream",
            "labels",
            "loop - best River peer (mean over seeds; >= 0, the median > 0)",
            "retrains without a drift near (all seeds; 0 on a stationary stream)",
            f"retrain decisions per drift (most; <= {GOAL_PER_DRIFT})",
            f"abrupt drifts recovered within {GOAL_RECOVERY_ROWS:,} rows (all)",
        ],
        rows,
    )


def families(run: Run) -> str:
    """Which model family each promoted version was, per stream and label variant."""
    rows = []
    for name in _names(run):
        for variant in run.variants:
            loop = sorted(_pick(run, name, variant, LOOP), key=lambda m: m.seed)
            if not loop:
                continue
            counts: dict[str, int] = {}
            for m in loop:
                for f in m.families:
                    counts[f] = counts.get(f, 0) + 1
            rows.append(
                [
                    name,
                    variant,
                    ", ".join(f"{SHORT.get(f, f)} {n}" for f, n in sorted(counts.items())),
                    "; ".join(
                        f"seed {m.seed}: " + " ".join(SHORT.get(f, f) for f in m.families)
                        for m in loop
                    ),
                ]
            )
    return table(["stream", "labels", "promoted versions by family", "in order (v1 first)"], rows)


def details(run: Run) -> str:
    """Every seed, every learner."""
    rows = [
        [
            m.stream,
            str(m.seed),
            m.variant,
            m.learner,
            fmt(m.accuracy),
            "/".join(fmt(s, 2) for s in m.segments),
            "/".join("-" if r is None else str(r) for r in m.recovery) or "-",
            "-" if m.retrains is None else f"{m.retrains} ({m.promotions} promoted)",
            "-" if m.unexplained is None else str(m.unexplained),
            "/".join(map(str, m.per_drift)) or "-",
            "-" if m.seconds is None else f"{m.seconds:.0f}",
        ]
        for m in sorted(run.metrics, key=lambda m: (m.stream, m.seed, m.variant))
    ]
    return table(
        [
            "stream",
            "seed",
            "labels",
            "learner",
            "accuracy",
            "per segment",
            "rows to recover per drift",
            "retrains",
            "without a drift near",
            "per drift",
            "loop s",
        ],
        rows,
    )


def oracles(run: Run) -> str:
    """The oracle of every segment (``-`` for a moving one)."""
    return table(
        ["stream", "seed", "segments (concept: oracle)"],
        [
            [
                n,
                str(s),
                ", ".join(f"{seg.concept}: {fmt(seg.oracle)}" for seg in st.segments),
            ]
            for (n, s), st in run.streams.items()
        ],
    )
