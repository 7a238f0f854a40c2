"""scikit-learn adapter: build and fit pipelines, compile them for fast serving, serialise.

A fitted model is a ``Pipeline(ColumnTransformer(StandardScaler | OneHotEncoder), estimator)``.
For serving, ``form_of`` lifts its fitted parameters into a ``ServingForm`` (numpy arrays
and lists, made in a worker process) and ``CompiledModel`` serves that: a single-row
prediction is a few float operations (~10 us) instead of sklearn's per-call validation
and a DataFrame (~1 ms). Linear models become one matrix product; tree models an ONNX
session (``adapters/onnx``) and, for HistGradientBoosting's single rows, a compiled walk
of their trees (``adapters/treejit``); scikit-learn's ``predict_proba`` is the fallback.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from continual.core.frame import Frame, Rows, column_of
from continual.core.onerow import OneRow
from continual.core.types import FeatureSchema, FeatureValue, Label, ModelType

if TYPE_CHECKING:
    from continual.adapters.treejit import Tree, TreeRow

Matrix = npt.NDArray[np.float64]


def one_thread() -> Any:
    """Limit every native thread pool of the model libraries to one thread; returns the
    limiter (``restore_original_limits()`` undoes it for the libraries loaded now).

    threadpoolctl reaches only libraries already loaded; scipy's BLAS and scikit-learn's
    OpenMP runtime load later, when a model is unpickled, and read their thread count
    from the environment then. With two OpenMP threads spinning on a busy 2-core box a
    HistGradientBoosting single-row predict fell to about 1 request a second. Setting
    the variables (unless the operator did) costs nothing at start-up, where importing
    those libraries up front cost 2.6 s and 150 MiB."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def build_pipeline(model_type: ModelType, schema: FeatureSchema, seed: int) -> Any:
    """An unfitted sklearn Pipeline for ``model_type`` over ``schema``'s columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f.name for f in schema.features if f.kind == "numeric"]
    categorical = [f.name for f in schema.features if f.kind == "categorical"]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("num", StandardScaler(), numeric))
    if categorical:
        parts.append(
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)
        )
    estimators: dict[str, Any] = {
        "logistic_regression": lambda: LogisticRegression(max_iter=1000, random_state=seed),
        "sgd": lambda: SGDClassifier(loss="log_loss", random_state=seed),
        "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(random_state=seed),
        "random_forest": lambda: RandomForestClassifier(
            n_estimators=100, n_jobs=1, random_state=seed
        ),
    }
    return Pipeline([("prep", ColumnTransformer(parts)), ("model", estimators[model_type]())])


def frame(rows: Rows, schema: FeatureSchema) -> Any:
    """A pandas DataFrame with the schema's columns in order (training and MLflow only)."""
    import pandas as pd

    if isinstance(rows, Frame) and schema.all_numeric:
        # the matrix as one block: no copy per column (a million rows of 20 features
        # cost a fifth of a LogisticRegression fit that way), as a caller's own frame is
        return pd.DataFrame(rows.values, columns=list(schema.names), copy=False)
    data: dict[str, Any] = {}
    for f in schema.features:
        column = column_of(rows, f.name)
        data[f.name] = np.asarray(column, dtype=np.float64) if f.kind == "numeric" else column
    return pd.DataFrame(data, columns=list(schema.names))


def fit(
    model_type: ModelType,
    schema: FeatureSchema,
    rows: Rows,
    labels: Sequence[Label],
    seed: int,
) -> Any:
    """Fit a fresh pipeline on ``rows`` and ``labels``."""
    pipeline = build_pipeline(model_type, schema, seed)
    pipeline.fit(
        frame(rows, schema),
        np.asarray(labels, dtype=object if isinstance(labels[0], str) else np.int64),
    )
    return pipeline


def _trees(estimator: Any) -> tuple[list[list[Tree]], list[float]] | None:
    """A HistGradientBoosting's trees and baseline (its single-row path), or ``None`` for
    other families and for native categorical splits. Reads the estimator's fitted
    predictors (private attributes of scikit-learn, pinned by uv.lock; tests/test_onnx.py
    checks the answers equal ``predict_proba``'s)."""
    if type(estimator).__name__ != "HistGradientBoostingClassifier":
        return None
    from continual.adapters.treejit import Tree  # a NamedTuple: numba is not imported

    trees: list[list[Tree]] = []
    for iteration in estimator._predictors:
        outputs = []
        for predictor in iteration:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                return None
            leaf = nodes["is_leaf"].astype(bool)
            outputs.append(
                Tree(
                    nodes["feature_idx"].tolist(),
                    nodes["num_threshold"].tolist(),
                    np.where(leaf, -1, nodes["left"].astype(np.int64)).tolist(),
                    nodes["right"].astype(np.int64).tolist(),
                    nodes["value"].tolist(),
                )
            )
        trees.append(outputs)
    baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel().tolist()
    return trees, baseline


@dataclass(frozen=True, slots=True)
class ServingForm:
    """What a ``CompiledModel`` needs of a fitted pipeline, in numpy arrays and lists.

    The server gets it from a worker process that unpickled the pipeline (``form_of``,
    ``portable``), so it never imports scikit-learn, scipy or pandas to serve: about
    120 MiB of its resident memory and a second and a half of each start-up."""

    classes: list[Label]
    numeric: list[str]  # the scaled columns, in the model's input order
    mean: Matrix
    scale: Matrix
    categorical: list[tuple[str, list[str]]]  # a column and its categories, one-hot after
    kind: str  # the estimator's class name
    linear: tuple[Matrix, Matrix] | None  # coef (width x classes) and intercept
    trees: tuple[list[list[Tree]], list[float]] | None  # a boosted ensemble's, if asked for
    # what scores a batch when neither ``linear`` nor ONNX does: the fitted estimator, or
    # (``portable``) its pickle, loaded only then
    estimator: Any


def form_of(pipeline: Any, trees: bool = False, portable: bool = False) -> ServingForm:
    """A fitted pipeline's ``ServingForm``; ``trees``: with a boosted ensemble's trees (a
    model that serves single rows); ``portable``: the estimator as its pickle (the form
    crosses to a process that may never need it)."""
    prep = pipeline.named_steps["prep"]
    estimator = pipeline.named_steps["model"]
    numeric: list[str] = []
    mean = np.zeros(0)
    scale = np.ones(0)
    categorical: list[tuple[str, list[str]]] = []
    for name, transformer, columns in prep.transformers_:
        if name == "num":
            numeric = list(columns)
            mean = np.asarray(transformer.mean_, dtype=np.float64)
            scale = np.asarray(transformer.scale_, dtype=np.float64)
        elif name == "cat":
            for column, cats in zip(columns, transformer.categories_, strict=True):
                categorical.append((column, [str(c) for c in cats]))
    kind = type(estimator).__name__
    linear = None
    if kind in _LINEAR_KINDS:
        linear = (
            np.asarray(estimator.coef_, dtype=np.float64).T.copy(),
            np.asarray(estimator.intercept_, dtype=np.float64),
        )
    return ServingForm(
        classes=[_plain(c) for c in estimator.classes_],
        numeric=numeric,
        mean=mean,
        scale=scale,
        categorical=categorical,
        kind=kind,
        linear=linear,
        trees=_trees(estimator) if trees else None,
        estimator=None if linear else dumps(estimator) if portable else estimator,
    )


# the estimators served by one matrix product, and their link
_LINEAR_KINDS = {"LogisticRegression": "softmax", "SGDClassifier": "ovr"}


class CompiledModel:
    """A fitted model lifted into numpy: encodes rows and predicts probabilities.

    ``runtime`` says what computes the probabilities of the encoded matrix: ``numpy``
    (linear models: one matrix product, faster than any runtime call), ``onnx`` (every
    other family, given the version's ONNX bytes) or ``sklearn`` (a version without them)."""

    def __init__(
        self,
        form: ServingForm,
        schema: FeatureSchema,
        onnx: bytes | None = None,
        serving: bool = False,
    ) -> None:
        """``onnx``: the version's verified ONNX bytes; ``serving``: this model answers
        requests, so a boosted ensemble's single-row evaluator is compiled now (~70 ms for
        100 trees; training's evaluations score batches and skip it)."""
        self.schema = schema
        self.classes: list[Label] = form.classes
        self.class_keys: list[str] = [str(c) for c in self.classes]
        self._numeric = form.numeric
        self._mean = form.mean
        self._scale = form.scale
        offset = len(form.numeric)
        self._categorical: list[tuple[str, dict[str, int]]] = []
        for column, cats in form.categorical:
            self._categorical.append((column, {c: offset + i for i, c in enumerate(cats)}))
            offset += len(cats)
        self.width = offset
        names = schema.names
        # where the model's inputs sit in a row of values in schema order
        self._numeric_at = [names.index(c) for c in self._numeric]
        # every feature numeric, in schema order: a row's values are the numeric inputs
        self._in_order = self._numeric_at == list(range(len(names)))
        self._categorical_at = [(names.index(c), index) for c, index in self._categorical]
        self._standard = list(
            zip(self._numeric_at, self._mean.tolist(), self._scale.tolist(), strict=True)
        )
        self._linear: tuple[Matrix, Matrix, str] | None = None
        self._one: OneRow | None = None
        if form.linear is not None:
            coef, intercept = form.linear
            self._linear = (coef, intercept, _LINEAR_KINDS[form.kind])
            self._one = OneRow(
                coef,
                intercept,
                _LINEAR_KINDS[form.kind],
                self._numeric_at,
                self._mean,
                self._scale,
                self._categorical_at,
            )
        self._trees: TreeRow | None = None
        if serving and form.trees is not None:
            from continual.adapters.treejit import TreeRow  # numba: for tree champions only

            trees, baseline = form.trees
            link = "logistic" if len(baseline) == 1 else "softmax"
            standard = (self._mean.tolist(), self._scale.tolist(), self.width)
            self._trees = TreeRow(trees, baseline, link, standard)
        self._estimator: Any = None
        self._session: Any = None
        self.runtime = "sklearn" if self._linear is None else "numpy"
        if onnx is not None and self._linear is None:
            from continual.adapters.onnx import Session

            self._session = Session(onnx)
            self.runtime = "onnx"
        elif self._linear is None:  # scikit-learn is imported here, and only here
            estimator = form.estimator
            self._estimator = pickle.loads(estimator) if isinstance(estimator, bytes) else estimator  # noqa: S301 - our own worker's pickle of a verified model
        # what scores one row (predict_one): plain floats, the numba walk, or the above
        self.single_row_runtime = (
            "python" if self._one is not None else "numba" if self._trees else self.runtime
        )

    @classmethod
    def of(
        cls, pipeline: Any, schema: FeatureSchema, onnx: bytes | None = None, serving: bool = False
    ) -> CompiledModel:
        """A fitted pipeline compiled in this process (the training worker, tests)."""
        return cls(form_of(pipeline, trees=serving), schema, onnx, serving)

    def encode(self, rows: Rows) -> Matrix:
        """Rows (already validated) to the model's input matrix."""
        if isinstance(rows, Frame):
            return self._encode_frame(rows)
        names = self.schema.names  # dicts are never the hot path: as tuples, one encoder
        return self.encode_values([tuple(r[n] for n in names) for r in rows])

    def encode_values(self, values: Sequence[Sequence[FeatureValue]]) -> Matrix:
        """Validated rows as tuples in schema order to the model's input matrix."""
        n = len(values)
        x = np.zeros((n, self.width), dtype=np.float64)
        if self._numeric:
            at = self._numeric_at
            if self._in_order:
                num = np.asarray(values, dtype=np.float64).reshape(n, len(at))
            else:
                pick = itemgetter(*at) if len(at) > 1 else (lambda v: (v[at[0]],))
                num = np.array([pick(v) for v in values], dtype=np.float64).reshape(n, len(at))
            x[:, : len(at)] = (num - self._mean) / self._scale
        for j, index in self._categorical_at:
            for i, v in enumerate(values):
                k = index.get(str(v[j]))
                if k is not None:  # unknown categories encode as all zeros, as in training
                    x[i, k] = 1.0
        return x

    def predict_values(self, values: Sequence[Sequence[FeatureValue]] | Frame) -> Matrix:
        """Class probabilities of validated rows (tuples in schema order, or a frame)."""
        if isinstance(values, Frame):
            return self.predict_proba(self._encode_frame(values))
        return self.predict_proba(self.encode_values(values))

    def predict_one(self, values: Sequence[FeatureValue]) -> list[float]:
        """Class probabilities of one validated row: plain floats, and for a linear model no
        numpy at all (a dozen numpy calls on a 1-row array cost more than its arithmetic)."""
        if self._one is not None:
            return self._one.proba(values)
        # unknown categories encode as all zeros, as in training
        hot = [
            k for at, index in self._categorical_at if (k := index.get(str(values[at]))) is not None
        ]
        if self._trees is not None:  # the walk standardises the numbers itself
            numbers = values if self._in_order else [values[at] for at in self._numeric_at]
            return self._trees.proba(numbers, hot)  # type: ignore[arg-type]
        # the input row in Python, then one array: five numpy calls fewer than encode_values
        row = [(values[at] - m) / s for at, m, s in self._standard]
        row += [0.0] * (self.width - len(row))
        for k in hot:
            row[k] = 1.0
        return self.predict_proba(np.array([row]))[0].tolist()  # type: ignore[no-any-return]

    def _encode_frame(self, rows: Frame) -> Matrix:
        """A frame to the input matrix: whole columns, codes looked up in one take each."""
        n = len(rows)
        x = np.zeros((n, self.width), dtype=np.float64)
        names = rows.schema.names
        if self._numeric:
            num = rows.values[:, [names.index(c) for c in self._numeric]]
            x[:, : len(self._numeric)] = (num - self._mean) / self._scale
        everyone = np.arange(n)
        for column, index in self._categorical:
            levels = rows.levels[names.index(column)]
            # code -> column of the one-hot block (-1: a category the model never saw)
            lut = np.asarray([index.get(v, -1) for v in levels] or [-1], dtype=np.intp)
            j = lut[rows.codes(column)]
            seen = j >= 0
            x[everyone[seen], j[seen]] = 1.0
        return x

    def predict_proba(self, x: Matrix) -> Matrix:
        """Class probabilities for an encoded matrix, columns in ``classes`` order."""
        if self._session is not None:
            return self._session.predict_proba(x)  # type: ignore[no-any-return]
        if self._linear is None:
            return np.asarray(self._estimator.predict_proba(x), dtype=np.float64)
        coef, intercept, link = self._linear
        z = x @ coef + intercept
        if z.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -700.0, 700.0)))
            return np.column_stack([1.0 - p1, p1])
        if link == "softmax":
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -700.0, 700.0)))
        total = p.sum(axis=1, keepdims=True)
        total[total == 0] = 1.0
        return np.asarray(p / total, dtype=np.float64)

    def predict_rows(self, rows: Rows) -> Matrix:
        """Encode and predict in one step."""
        return self.predict_proba(self.encode(rows))

    def labels_of(self, proba: Matrix) -> list[Label]:
        """The most probable class of each row."""
        return [self.classes[i] for i in np.argmax(proba, axis=1)]


LINEAR_TYPES = ("logistic_regression", "sgd")  # served by numpy: faster than an ONNX call


def _plain(value: Any) -> Label:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, int | str):
        return value
    return str(value)


def accuracy(model: CompiledModel, rows: Rows, labels: Sequence[Label]) -> float:
    """Share of ``rows`` whose predicted label equals the true one."""
    if not len(rows):
        return 0.0
    predicted = model.labels_of(model.predict_rows(rows))
    return sum(p == t for p, t in zip(predicted, labels, strict=True)) / len(rows)


def dumps(pipeline: Any) -> bytes:
    """Serialise a fitted pipeline."""
    buffer = io.BytesIO()
    pickle.dump(pipeline, buffer, protocol=5)
    return buffer.getvalue()


def sha256(blob: bytes) -> str:
    """Hex digest used to verify local copies and registry artifacts before loading."""
    return hashlib.sha256(blob).hexdigest()


def write_atomic(path: Path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` so that a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def loads_verified(blob: bytes, expected_sha256: str) -> Any:
    """Unpickle ``blob`` only if its digest matches the one we recorded (trust boundary)."""
    actual = sha256(blob)
    if actual != expected_sha256:
        raise ValueError(
            f"model digest mismatch: expected {expected_sha256[:12]}, got {actual[:12]}"
        )
    return pickle.loads(blob)  # noqa: S301 - digest verified against our own record above


def synthetic(
    n_samples: int, n_features: int, concept: int, seed: int
) -> tuple[list[dict[str, FeatureValue]], list[int]]:
    """Labelled rows from ``make_classification``; each concept is another decision boundary.

    ``make_classification`` draws a new class layout for every seed, so the rows are
    moved (a rotation about the midpoint of the class means) until the classes lie along
    a direction fixed by the concept alone: the same concept means the same boundary
    whatever the seed. Concept 1 mirrors concept 0 (a model of one scores near 0 on the
    other); concepts 2 and 3 are a quarter turn away from 0 and 1 (typically 0.2 to 0.8).
    """
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=max(n_samples, 2),
        n_features=n_features,
        n_informative=n_features,
        n_redundant=0,
        n_repeated=0,
        n_clusters_per_class=1,
        class_sep=2.0,
        flip_y=0.0,
        random_state=seed,
    )
    x, y = x[:n_samples], y[:n_samples]
    mean0 = x[y == 0].mean(axis=0) if (y == 0).any() else np.zeros(n_features)
    mean1 = x[y == 1].mean(axis=0) if (y == 1).any() else np.ones(n_features)
    u = mean1 - mean0
    u = u / (np.linalg.norm(u) or 1.0)
    x = (x - (mean0 + mean1) / 2) @ _reflect(u, _concept_direction(n_features, concept)).T
    names = [f"feature{i + 1}" for i in range(n_features)]
    rows: list[dict[str, FeatureValue]] = [
        dict(zip(names, map(float, r), strict=True)) for r in np.round(x, 6)
    ]
    return rows, [int(v) for v in y]


def _concept_direction(n: int, concept: int) -> Matrix:
    base = np.ones(n) / np.sqrt(n)
    other = np.asarray([(-1.0) ** i for i in range(n)])
    other = other - (other @ base) * base  # Gram-Schmidt: exactly orthogonal to base
    other = other / np.linalg.norm(other)
    return np.asarray([base, -base, other, -other][concept % 4], dtype=np.float64)


def _reflect(u: Matrix, d: Matrix) -> Matrix:
    """The Householder reflection that maps unit vector ``u`` onto unit vector ``d``."""
    w = u - d
    norm = np.linalg.norm(w)
    if norm < 1e-12:
        return np.eye(len(u))
    w = w / norm
    return np.eye(len(u)) - 2.0 * np.outer(w, w)
