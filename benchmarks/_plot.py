"""One picture per stream: the trailing accuracy of the loop and of each peer along the
stream, one panel per label variant, with the drifts and the loop's retrains marked.

matplotlib comes with MLflow (a dependency of the service); only the benchmark draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _metrics import CheckAt
from _streams import Stream

TRAIL = 250
STYLE = {
    "continual": {"color": "black", "linewidth": 2.0, "zorder": 5},
    "ARF": {"color": "tab:blue", "linewidth": 1.0},
    "SRP": {"color": "tab:orange", "linewidth": 1.0},
    "LevBag": {"color": "tab:green", "linewidth": 1.0},
    "HAT": {"color": "tab:purple", "linewidth": 1.0},
    "never retrained": {"color": "grey", "linewidth": 1.0, "linestyle": "--"},
}
SHORT = {"logistic_regression": "LR", "hist_gradient_boosting": "HGB", "random_forest": "RF"}


@dataclass
class Panel:
    """One label variant's replay of the shown seed."""

    variant: str
    stream: Stream
    curves: dict[str, list[bool]]
    checks: list[CheckAt] | None


def trailing(correct: Sequence[bool], window: int = TRAIL) -> np.ndarray:
    """Accuracy over the last ``window`` rows at each row (fewer at the very start)."""
    c = np.concatenate([[0.0], np.cumsum(np.asarray(correct, dtype=float))])
    i = np.arange(1, len(correct) + 1)
    lo = np.maximum(0, i - window)
    return (c[i] - c[lo]) / (i - lo)


def draw(path: Path, title: str, panels: Sequence[Panel]) -> None:
    """Write the PNG: a panel per label variant, stacked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(panels), 1, figsize=(11, 3.4 * len(panels)), sharex=True, squeeze=False
    )
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        stream = panel.stream
        x = np.arange(1, len(stream.rows) + 1)
        low = 1.0
        for learner, correct in panel.curves.items():
            y = trailing(correct)
            low = min(low, float(y[TRAIL:].min()) if len(y) > TRAIL else float(y.min()))
            ax.plot(x, y, label=learner, **STYLE.get(learner, {"linewidth": 1.0}))
        for seg in stream.segments:
            if seg.oracle == seg.oracle:  # not NaN: a fixed concept
                ax.hlines(seg.oracle, seg.start, seg.end, colors="grey", linestyles=":")
        for k, d in enumerate(stream.changes):
            label = "drift" if k == 0 else None
            if d.abrupt:
                ax.axvline(d.start, color="red", linewidth=1.0, alpha=0.7, label=label)
            else:
                ax.axvspan(d.start, d.end, color="red", alpha=0.08, label="gradual drift")
        top = 1.02
        for c in panel.checks or []:
            if c.decision != "retrain":
                continue
            promoted = bool(c.promoted)
            ax.plot(
                c.row,
                top,
                marker="v",
                markersize=7,
                color="black",
                markerfacecolor="black" if promoted else "white",
                linestyle="none",
                clip_on=False,
                zorder=6,
            )
            if promoted and c.model_type:
                ax.annotate(
                    SHORT.get(c.model_type, c.model_type),
                    (c.row, top),
                    xytext=(0, 6),
                    textcoords="offset points",
                    ha="center",
                    fontsize=7,
                    annotation_clip=False,
                )
        ax.set_ylim(max(0.0, low - 0.05), top)
        ax.set_ylabel(f"trailing {TRAIL}-row accuracy")
        ax.text(
            0.005,
            0.03,
            f"labels {panel.variant}, seed {stream.seed}",
            transform=ax.transAxes,
            fontsize=9,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
        )
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(
        "row of the stream (after the warm-up); ▼ retrain promoted (family), ▽ rejected; "
        "dotted: oracle"
    )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
