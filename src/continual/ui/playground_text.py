"""What the playground says: which data it can generate, and its actions' results.

Pure functions of service results (no NiceGUI), tested without a browser, like
``continual.ui.view``.
"""

from __future__ import annotations

from continual.core.types import FeatureSchema, RetrainResult
from continual.services.monitor import CheckResult
from continual.ui.format import percent
from continual.ui.view import PREPARING


def synthetic_width(schema: FeatureSchema | None) -> int | None:
    """How many features generated rows need: the schema's, when it is ``feature1..N``.

    ``None`` means the stored data is not synthetic, so generating would be refused.
    """
    if schema is None:
        return 2
    names = tuple(f"feature{i + 1}" for i in range(len(schema.features)))
    if schema.names == names and schema.all_numeric and schema.label_kind == "int":
        return len(names)
    return None


def generate_note(schema: FeatureSchema | None) -> str:
    """Why the playground offers no synthetic data: "" when it does (the schema is the
    generator's, ``feature1..N``, numbers, an integer label, or none is fixed yet)."""
    if schema is None or synthetic_width(schema) is not None:
        return ""
    columns = ", ".join(f"{f.name} ({f.kind})" for f in schema.features)
    return (
        f"Generating data is not offered here: the stored data has its own schema "
        f"({columns}; label {schema.label}), and generated rows (feature1..N, numbers) "
        "would not fit it. Send labelled rows with POST /data or `continual ingest`."
    )


def retrain_text(result: RetrainResult) -> str:
    """One line for a retrain's verdict."""
    verdict = "promoted" if result.promoted else "rejected"
    line = f"Version {result.version} {verdict}: {result.reason}."
    if result.tracking_prepared_seconds >= 1:
        line += (
            f" The first {result.tracking_prepared_seconds:.0f} s went to preparing the "
            "tracking store (the first retrain after start-up)."
        )
    return line


def retrain_pending_text(tracking_ready: bool) -> str:
    """What the playground says while a retrain it asked for runs."""
    if tracking_ready:
        return "Training a challenger…"
    return f"Training a challenger: {PREPARING} This first retrain takes 10 to 20 s longer."


def check_text(result: CheckResult) -> str:
    """One or two lines for a check's decision (and the retrain it ran)."""
    line = f"Check: {result.decision.replace('_', ' ')} ({result.reason})."
    if result.retrain is not None:
        line += " " + retrain_text(result.retrain)
    elif result.retrain_error is not None:
        line += f" The retrain failed: {result.retrain_error}."
    return line


def ingest_text(accepted: int, concept: int, scored_by: str | None, correct: int | None) -> str:
    """What one generated batch stored, and how the champion did on it."""
    line = f"Stored {accepted} rows of concept {concept}."
    if scored_by is not None and correct is not None and accepted:
        line += f" Champion v{scored_by} got {percent(correct / accepted)} of them right."
    return line
