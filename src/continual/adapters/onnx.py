"""ONNX adapter: the only module that imports skl2onnx, onnx and onnxruntime.

The fitted estimator alone is converted, on the float64 matrix that
``CompiledModel.encode`` makes (our encoder stays in numpy). ``export`` runs in the
training worker only; the server builds a ``Session`` from the verified bytes, so a tree
ensemble serves one row in tens of microseconds instead of sklearn's milliseconds.

Precision, so that the probabilities stay within 1e-6 of scikit-learn's:
- a random forest takes float32, as sklearn's trees cast their input to float32 before
  comparing; skl2onnx then adjusts each threshold to that comparison (its float64 input
  path does the same by a bisection per node, 8 times slower to convert);
- HistGradientBoosting compares float64 inputs with float64 thresholds, which skl2onnx
  1.20 writes as float32 lists even at ai.onnx.ml opset 3; ``_Container`` rewrites them
  as float64 ``*_as_tensor`` attributes (a row lying on a threshold otherwise goes down
  the wrong branch), and makes an int of the Python ``False`` the library puts in an int
  list for every leaf (protobuf 7 refuses it).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

INPUT = "x"
OUTPUT = "probabilities"
OPSETS = {"": 17, "ai.onnx.ml": 3}
_TENSORS = ("nodes_values", "nodes_hitrates", "class_weights", "base_values")
_FLOAT32_INPUT = ("RandomForestClassifier",)
_HGB_OPTIONS: dict[str, list[Any]] = {
    "zipmap": [True, False, "columns"],
    "raw_scores": [True, False],
    "output_class_labels": [False, True],
    "nocl": [True, False],
}


def export(estimator: Any, width: int) -> bytes:
    """The ONNX model of a fitted classifier taking a ``(n, width)`` float64 matrix and
    returning the probabilities of ``estimator.classes_`` (output ``probabilities``)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    prepare()
    tensor = FloatTensorType if type(estimator).__name__ in _FLOAT32_INPUT else DoubleTensorType
    model = convert_sklearn(
        estimator,
        initial_types=[(INPUT, tensor([None, width]))],
        options={id(estimator): {"zipmap": False}},
        target_opset=OPSETS,
    )
    return bytes(model.SerializeToString())


class Session:
    """An onnxruntime session over verified bytes, on one thread (a 2-core box: a
    thread pool spinning beside the event loop costs more than it saves on one row)."""

    def __init__(self, blob: bytes) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        self._run = self._session.run
        self._outputs = [OUTPUT]
        kind = self._session.get_inputs()[0].type
        self._float32 = kind == "tensor(float)"

    def predict_proba(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Class probabilities for an encoded float64 matrix."""
        feed = x.astype(np.float32) if self._float32 else x
        return np.asarray(self._run(self._outputs, {INPUT: feed})[0], dtype=np.float64)


@functools.cache
def prepare() -> None:
    """Import skl2onnx and route HistGradientBoosting through the double-precision fix
    (once per process; the worker's warm-up calls it ahead of the first retrain)."""
    from skl2onnx import update_registered_converter
    from sklearn.ensemble import HistGradientBoostingClassifier

    update_registered_converter(
        HistGradientBoostingClassifier,
        "SklearnHistGradientBoostingClassifier",
        _tree_shapes,
        _convert_tree,
        options=_HGB_OPTIONS,
    )


def _tree_shapes(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType
    from skl2onnx.shape_calculators.ensemble_shapes import (
        calculate_tree_classifier_output_shapes,
    )

    calculate_tree_classifier_output_shapes(operator)
    # TreeEnsembleClassifier always answers float32, whatever its input type
    operator.outputs[1].type = FloatTensorType(operator.outputs[1].type.shape)


def _convert_tree(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.operator_converters.random_forest import (
        convert_sklearn_random_forest_classifier,
    )

    # at opset 3 the library keeps the thresholds and leaf values in float64 arrays
    convert_sklearn_random_forest_classifier(scope, operator, _Container(container), op_version=3)


class _Container:
    """skl2onnx's container, but tree attributes go out as float64 tensors, and bools as ints."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def add_node(self, op_type: str, inputs: Any, outputs: Any, **attrs: Any) -> Any:
        from onnx import numpy_helper

        for key, value in list(attrs.items()):
            if isinstance(value, list) and any(isinstance(v, bool) for v in value):
                attrs[key] = [int(v) for v in value]
            if op_type == "TreeEnsembleClassifier" and key in _TENSORS:
                array = np.asarray(attrs.pop(key)).ravel()  # the input's precision
                attrs[f"{key}_as_tensor"] = numpy_helper.from_array(array)
        return self._inner.add_node(op_type, inputs, outputs, **attrs)
