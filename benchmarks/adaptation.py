"""Adaptation: does the loop keep any tabular model accurate while the stream drifts?

Replays streams with known drift points (``_synth.py``) through the real HTTP API of a
live server: for each row ``POST /predict``, then ``POST /feedback`` with its label (at
once, or 500 rows late). The harness is the clock: the scheduler is off and the harness
calls ``POST /check`` every 100 rows, so a run is deterministic. The same rows, in the
same order and with the same label schedule, go to River's ARF, SRP and Leveraging
Bagging (10 models each) and Hoeffding Adaptive Tree, and to the service's pipelines
fitted once and never retrained (``_peers.py``; the River peers are cached on disk).

    uv run python benchmarks/adaptation.py                      # everything: ~45 min cold
    uv run python benchmarks/adaptation.py --peers-only          # fill the peers' cache
    uv run python benchmarks/adaptation.py --streams sine --seeds 1 --labels immediate
    uv run python benchmarks/adaptation.py --smoke --no-peers    # tiny, into /tmp

River is a benchmark-only dependency (in the dev group; ``pip install river`` otherwise).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from _estimates import estimates
from _harness import DOC, ROOT, machine, write_section
from _loop import Outcome, replay_server
from _metrics import Metrics, measure, selfcheck
from _peers import PEERS, cached_peers, never_retrained, peer_path, run_peers
from _plot import Panel, draw
from _report import LOOP, NEVER, Run, details, families, oracles, summary, targets
from _streams import Labels, Stream, build, schedule
from _synth import STREAMS

VARIANTS = ("immediate", "delayed", "half")
DEFAULT_VARIANTS = ("immediate", "delayed")


@dataclass
class Config:
    """One benchmark run's knobs (all on the command line)."""

    streams: list[str]
    variants: list[str]
    seeds: list[int]
    segment_rows: int = 1000
    warmup_rows: int = 1000
    check_every: int = 100
    delay: int = 500
    model: str | None = None
    jobs: int = 1
    peer_jobs: int = 1
    peers: bool = True  # compute the peers that are not cached (else: the cache only)
    loop: bool = True
    env: dict[str, str] = field(default_factory=dict)


def _nice() -> None:
    os.nice(10)


def run(cfg: Config) -> tuple[dict[tuple[str, int], Stream], list[Outcome]]:
    """Every (stream, seed, variant): the loop, the peers, the never-retrained models."""
    streams = build_all(cfg)
    tasks = [(st, v) for st in streams.values() for v in cfg.variants]
    labels = {
        (st.name, st.seed, v): schedule(v, len(st.rows), st.seed, cfg.delay) for st, v in tasks
    }
    outcomes = {key: Outcome(*key) for key in labels}
    ctx = multiprocessing.get_context("spawn")
    # beside the loop the peers yield to its server, whose timing the run reports
    nice = _nice if cfg.loop else None
    with ProcessPoolExecutor(cfg.peer_jobs, mp_context=ctx, initializer=nice) as pool:
        peers: dict[tuple[str, int, str], Future[dict[str, list[bool]]]] = {}
        if cfg.peers:
            for st, v in tasks:
                key = (st.name, st.seed, v)
                if cached_peers(st, v, labels[key]) is None:
                    peers[key] = pool.submit(run_peers, st, v, labels[key])
            print(f"peers: {len(peers)} of {len(tasks)} replays to compute", flush=True)
        for st in streams.values():  # cheap (a fit on the warm-up), not cached: product code
            for family, name in NEVER.items():
                got = never_retrained(st, family)
                for v in cfg.variants:
                    outcomes[(st.name, st.seed, v)].curves[name] = got
        if cfg.loop:
            _loop(cfg, tasks, labels, outcomes)
        for key, fut in peers.items():
            fut.result()
            print(f"  peers {' '.join(map(str, key))}: cached", flush=True)
    for st, v in tasks:
        key = (st.name, st.seed, v)
        outcomes[key].curves.update(cached_peers(st, v, labels[key]) or {})
    return streams, list(outcomes.values())


def build_all(cfg: Config) -> dict[tuple[str, int], Stream]:
    """Every stream and seed of the run (the oracles come from the cache)."""
    return {
        (n, s): build(n, s, cfg.segment_rows, cfg.warmup_rows)
        for n in cfg.streams
        for s in cfg.seeds
    }


def _loop(
    cfg: Config,
    tasks: Sequence[tuple[Stream, str]],
    labels: dict[tuple[str, int, str], Labels],
    outcomes: dict[tuple[str, int, str], Outcome],
) -> None:
    template = _mlflow_template()
    try:
        with ThreadPoolExecutor(cfg.jobs) as threads:
            futures = {
                threads.submit(
                    replay_server,
                    st,
                    v,
                    labels[(st.name, st.seed, v)],
                    cfg.check_every,
                    _env(cfg, st.name),
                    template,
                ): (st.name, st.seed, v)
                for st, v in tasks
            }
            for fut, key in futures.items():
                try:
                    got = fut.result()
                except Exception as exc:  # one failed replay must not lose the others
                    print(f"  {' '.join(map(str, key))}: FAILED {exc!r}"[:500], flush=True)
                    continue
                out = outcomes[key]
                out.curves.update(got.curves)
                out.checks, out.families = got.checks, got.families
                out.first_family, out.seconds = got.first_family, got.seconds
    finally:
        shutil.rmtree(template.parent, ignore_errors=True)


def evaluate(
    cfg: Config, streams: dict[tuple[str, int], Stream], outcomes: Sequence[Outcome]
) -> Run:
    """The metrics of every learner on every replay, and the peers' CPU time (cached)."""
    metrics: list[Metrics] = []
    seconds: dict[str, float] = {}
    for out in outcomes:
        st = streams[(out.stream, out.seed)]
        for name, correct in out.curves.items():
            m = measure(st, out.variant, name, correct, out.checks if name == LOOP else None)
            if name == LOOP:
                m.seconds, m.families = out.seconds, out.families
            metrics.append(m)
        path = peer_path(st, out.variant, schedule(out.variant, len(st.rows), st.seed, cfg.delay))
        if path.exists():
            for peer, s in json.loads(path.read_text())["seconds"].items():
                seconds[peer] = seconds.get(peer, 0.0) + s
    return Run(streams, cfg.variants, metrics, seconds)


def _env(cfg: Config, stream: str) -> dict[str, str]:
    env = {
        "CONTINUAL_DASHBOARD": "false",
        "CONTINUAL_COOLDOWN_SECONDS": "0",  # cooldown is wall time; the harness is the clock
        **STREAMS[stream].env,
        **cfg.env,
    }
    if cfg.model:
        env["CONTINUAL_MODEL"] = cfg.model
    return env


def _mlflow_template() -> Path:
    """An MLflow database with its tables made, copied into each replay's data dir: the
    first retrain in a fresh directory would otherwise spend 15-25 s creating them."""
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    where = Path(tempfile.mkdtemp(prefix="continual-bench-mlflow-")) / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{where}").search_experiments()
    return where


def figures(run: Run, outcomes: Sequence[Outcome], out: Path) -> list[Path]:
    """A PNG per stream: the median seed by the loop's accuracy (or the best peer's), a
    panel per label variant."""
    paths = []
    for name in dict.fromkeys(n for n, _ in run.streams):
        panels = []
        for v in run.variants:
            got = sorted(
                (o for o in outcomes if (o.stream, o.variant) == (name, v)),
                key=lambda o: sum(o.curves.get(LOOP) or o.curves.get("ARF") or [0]),
            )
            if not got:
                continue
            o = got[(len(got) - 1) // 2]
            curves = {k: o.curves[k] for k in (LOOP, *PEERS) if k in o.curves}
            never = NEVER.get(o.first_family or "")
            for label in NEVER.values():
                if never in (None, label) and label in o.curves:
                    curves[label if never is None else "never retrained"] = o.curves[label]
            panels.append(Panel(v, run.streams[(name, o.seed)], curves, o.checks))
        if panels:
            path = out / f"{name}.png"
            draw(path, f"{name}: {STREAMS[name].about}", panels)
            paths.append(path)
    return paths


def report(
    run: Run,
    cfg: Config,
    command: str,
    seconds: float,
    pictures: Sequence[Path],
    doc: Path,
    outcomes: Sequence[Outcome] = (),
) -> str:
    """The section written into docs/benchmarks.md."""
    loop_s = [m.seconds for m in run.metrics if m.learner == LOOP and m.seconds]
    timing = (
        f"the loop's replays took {sum(loop_s) / 60:.0f} min ({min(loop_s):.0f} to "
        f"{max(loop_s):.0f} s each, mean {sum(loop_s) / len(loop_s):.0f} s)"
        if loop_s
        else "the loop did not run"
    )
    peer = ", ".join(f"{p} {s / 60:.0f} min" for p, s in run.peer_seconds.items())
    peer = f"{peer} of CPU" if peer else "-"
    replays = {(m.stream, m.seed, m.variant) for m in run.metrics}
    with_peers = {(m.stream, m.seed, m.variant) for m in run.metrics if m.learner == PEERS[0]}
    if len(with_peers) < len(replays):
        peer += f"; **River peers in the cache for {len(with_peers)} of {len(replays)} replays**"
    links = "\n\n".join(f"![{p.stem}]({os.path.relpath(p, doc.parent)})" for p in pictures)
    return "\n\n".join(
        [
            f"Command: `{command}` ({seconds / 60:.0f} min wall; {timing}; computing the River "
            f"peers, cached since, took {peer or '-'}; {machine()}).",
            f"Streams of {cfg.warmup_rows:,} warm-up rows and segments of {cfg.segment_rows:,} rows; "
            f"seeds {', '.join(map(str, cfg.seeds))}; `POST /check` every {cfg.check_every} rows; "
            f"late labels arrive {cfg.delay} rows late; server settings: defaults but for "
            + ", ".join(f"{k}={v}" for k, v in sorted(_env(cfg, "sea").items()))
            + " (and `PERFORMANCE_THRESHOLD=0.9` on `waveform`). Figures are means over seeds.",
            "**Targets**:",
            targets(run),
            "**Summary** (prequential accuracy; `never LR`/`never HGB`: the service's pipeline "
            "fitted on the warm-up and never retrained; rows to recover: after each drift, "
            "mean over the recovered ones / the worst, `>N` when not within the segment):",
            summary(run),
            "**Model family of each promoted version** (`GET /models`; v1 is the first model):",
            families(run),
            "**Estimated accuracy** (each check's estimate from the champion's calibrated "
            "confidence on its newest predictions, against the accuracy those rows realized "
            "once their labels came; mean absolute error):",
            estimates(outcomes, run.streams),
            links,
            "Oracle per segment (the better of the service's LogisticRegression and "
            "HistGradientBoosting on 5,000 fresh rows of the concept, scored on 5,000 more):",
            oracles(run),
            "<details><summary>Every seed</summary>\n\n" + details(run) + "\n\n</details>",
        ]
    )


def parse(argv: Sequence[str] | None = None) -> tuple[Config, argparse.Namespace]:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--streams", default=",".join(STREAMS), help=", ".join(STREAMS))
    p.add_argument(
        "--labels",
        "--variants",
        dest="labels",
        default=",".join(DEFAULT_VARIANTS),
        help=", ".join(VARIANTS),
    )
    p.add_argument("--seeds", default="3", help="N (seeds 1..N) or a list: 1,3")
    p.add_argument("--segment-rows", type=int, default=1000)
    p.add_argument("--warmup-rows", type=int, default=1000)
    p.add_argument("--check-every", type=int, default=100)
    p.add_argument("--delay", type=int, default=500)
    p.add_argument("--model", help="CONTINUAL_MODEL for the server (default: its own)")
    p.add_argument("--jobs", type=int, default=1, help="loop replays side by side")
    p.add_argument("--peer-jobs", type=int, default=1, help="processes computing peers")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--no-peers", action="store_true", help="use cached peers only")
    mode.add_argument("--peers-only", action="store_true", help="compute and cache peers; no loop")
    p.add_argument("--no-loop", action="store_true", help="no loop (with --no-peers: re-render)")
    p.add_argument("--env", action="append", default=[], help="server setting KEY=VALUE")
    p.add_argument("--smoke", action="store_true", help="1 seed, small streams, output in /tmp")
    p.add_argument("--json", type=Path, help="also save the run here")
    p.add_argument("--render", type=Path, help="re-render a run saved with --json")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--no-figures", action="store_true", help="draw no PNGs")
    p.add_argument("--section", default="adaptation", help="the section of the doc to write")
    p.add_argument("--estimate-only", action="store_true", help="write only the estimate's table")
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument("--figures", type=Path, default=ROOT / "docs" / "benchmarks")
    a = p.parse_args(argv)
    seeds = (
        [int(s) for s in a.seeds.split(",")] if "," in a.seeds else list(range(1, int(a.seeds) + 1))
    )
    cfg = Config(
        streams=[s for s in a.streams.split(",") if s],
        variants=[v for v in a.labels.split(",") if v],
        seeds=seeds,
        segment_rows=a.segment_rows,
        warmup_rows=a.warmup_rows,
        check_every=a.check_every,
        delay=a.delay,
        model=a.model,
        jobs=a.jobs,
        peer_jobs=a.peer_jobs,
        peers=not a.no_peers,
        loop=not (a.peers_only or a.no_loop),
        env=dict(kv.split("=", 1) for kv in a.env),
    )
    if a.smoke:
        cfg.seeds, cfg.segment_rows, cfg.warmup_rows = [1], 600, 500
        a.doc, a.figures = Path("/tmp/continual-smoke/benchmarks.md"), Path("/tmp/continual-smoke")
    unknown = [s for s in cfg.streams if s not in STREAMS] + [
        v for v in cfg.variants if v not in VARIANTS
    ]
    if unknown:
        p.error(f"unknown stream or label variant: {', '.join(unknown)}")
    return cfg, a


def _command(given: Sequence[str]) -> str:
    """The command that reproduces the figures, without output options."""
    shown, skip = [], False
    for a in given:
        if skip:
            skip = False
        elif a in ("--json", "--render", "--doc", "--figures", "--section"):
            skip = True
        elif a not in ("--no-write", "--no-figures") and not a.startswith(("--json=", "--render=")):
            shown.append(a)
    return " ".join(["uv run python benchmarks/adaptation.py", *shown])


def main(argv: Sequence[str] | None = None) -> None:
    """Run (or re-render a saved run), print, draw, and write the section."""
    from _harness import exit_on_sigterm

    cfg, args = parse(argv)
    exit_on_sigterm()
    command = _command(list(sys.argv[1:] if argv is None else argv))
    if args.smoke:
        selfcheck()
    if importlib.util.find_spec("river") is None:
        sys.exit(
            "River is not installed: `uv sync` (it is a dev dependency) or `pip install river`"
        )
    from continual.adapters.models import one_thread

    one_thread()  # the oracles' and never-retrained fits, pinned as the server pins its own
    started = time.perf_counter()
    if args.render:
        saved = json.loads(args.render.read_text())
        cfg = Config(**saved["config"])
        streams = build_all(cfg)
        outcomes = [Outcome.from_json(o) for o in saved["outcomes"]]
        seconds = float(saved["seconds"])
    else:
        streams, outcomes = run(cfg)
        seconds = time.perf_counter() - started
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(
                json.dumps(
                    {
                        "config": asdict(cfg),
                        "outcomes": [o.to_json() for o in outcomes],
                        "seconds": seconds,
                    }
                )
            )
    result = evaluate(cfg, streams, outcomes)
    if args.estimate_only:
        text = estimate_report(cfg, seconds, outcomes, streams)
        print(text)
        if not args.no_write:
            write_section(args.section, text, args.doc)
        return
    pictures = [] if args.no_figures else figures(result, outcomes, args.figures)
    text = report(result, cfg, command, seconds, pictures, args.doc, outcomes)
    print()
    print(text)
    if not args.no_write:
        title = "## Adaptation (quick set)" if args.section.endswith("quick") else "## Adaptation"
        write_section(args.section, f"{title}\n\n{text}", args.doc)


def estimate_report(
    cfg: Config,
    seconds: float,
    outcomes: Sequence[Outcome],
    streams: dict[tuple[str, int], Stream],
) -> str:
    """The estimate's section alone (``--estimate-only``)."""
    command = (
        f"uv run python benchmarks/adaptation.py --streams {','.join(cfg.streams)} "
        f"--labels {','.join(cfg.variants)} --seeds {','.join(map(str, cfg.seeds))} "
        f"--no-peers --estimate-only --jobs {cfg.jobs} --section adaptation-estimate"
    )
    return "\n\n".join(
        [
            "## Estimated accuracy while labels are late",
            f"Command: `{command}` ({seconds / 60:.0f} min wall; {machine()}). Segments of "
            f"{cfg.segment_rows:,} rows after {cfg.warmup_rows:,} warm-up rows, seeds "
            f"{', '.join(map(str, cfg.seeds))}; labels {cfg.delay} rows late (`delayed`) or "
            "half of them never (`half`); at each `POST /check` (every "
            f"{cfg.check_every} rows) the check's `estimated_accuracy` against the accuracy "
            "the very rows it was taken over realized once their labels came (those that "
            "ever came); seeds pooled:",
            estimates(outcomes, streams),
        ]
    )


if __name__ == "__main__":
    main()
