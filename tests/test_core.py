"""The pure core: policy, drift detection, drift statistics, row validation."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from continual.core import detect, drift, policy
from continual.core.errors import InvalidInput, PayloadTooLarge
from continual.core.schema import (
    infer_schema,
    parse_schema_spec,
    validate_labelled,
    validate_unlabelled,
)
from continual.core.types import Capacity, Feature, FeatureSchema

BASE = policy.CheckInputs(
    now=1000.0,
    has_champion=True,
    labelled_rows=5000,
    samples=300,
    accuracy=0.9,
    threshold=0.8,
    min_samples=200,
    detector_fired=False,
    last_retrain_at=None,
    cooldown_seconds=60,
)


def with_(**changes: object) -> policy.CheckInputs:
    import msgspec

    return msgspec.structs.replace(BASE, **changes)


@pytest.mark.parametrize(
    ("changes", "decision"),
    [
        ({}, "ok"),
        ({"accuracy": 0.79}, "retrain"),
        ({"accuracy": 0.8}, "ok"),
        ({"detector_fired": True}, "retrain"),
        ({"samples": 199, "accuracy": 0.1}, "insufficient_data"),
        ({"accuracy": 0.5, "last_retrain_at": 990.0}, "cooldown"),
        ({"accuracy": 0.5, "last_retrain_at": 900.0}, "retrain"),
        ({"last_retrain_at": 990.0}, "ok"),
        (
            {"has_champion": False, "labelled_rows": 199, "samples": 0, "accuracy": None},
            "insufficient_data",
        ),
        ({"has_champion": False, "labelled_rows": 200, "samples": 0, "accuracy": None}, "retrain"),
    ],
)
def test_decide(changes: dict[str, object], decision: str) -> None:
    """The check's decision table: threshold backstop, detector, min samples, cooldown."""
    assert policy.decide(with_(**changes)).decision == decision


def test_decide_explains_itself() -> None:
    """Each decision carries its numbers in the reason."""
    v = policy.decide(with_(accuracy=0.74, samples=500))
    assert v.reason == "live accuracy 0.740 < threshold 0.800 on 500 rows"


@pytest.mark.parametrize(
    ("challenger", "champion", "promote"),
    [
        (0.9, None, True),
        (0.9, 0.85, True),
        (0.9, 0.898, False),
        (0.85, 0.9, False),
        (0.9, 0.9, False),
    ],
)
def test_should_promote(challenger: float, champion: float | None, promote: bool) -> None:
    """Only a challenger better by at least the margin wins (or when there is no champion)."""
    assert policy.should_promote(challenger, champion, 0.005)[0] is promote


def test_detector_docstring_examples_run() -> None:
    """The detector's docstring examples hold."""
    assert doctest.testmod(detect).failed == 0


def test_change_point_is_quiet_on_stable_streams_and_locates_a_rise() -> None:
    """The check's detector (z >= ALARM_Z): under 1 % false alarms per check on stable error
    streams of 100 to 2,000 rows at 2 % to 30 % error; an abrupt rise is located within a
    few rows and a mild one (10 % -> 20 % error) is caught within 400 rows."""
    rng = np.random.default_rng(0)
    for n in (100, 500, 2000):
        for error in (0.02, 0.1, 0.3):
            alarms = sum(
                detect.change_point((rng.random(n) > error).tolist())[1] >= detect.ALARM_Z
                for _ in range(200)
            )
            assert alarms <= 2, (n, error, alarms)
    jumped = (rng.random(1900) > 0.05).tolist() + (rng.random(100) > 0.6).tolist()
    k, z = detect.change_point(jumped)
    assert z >= detect.ALARM_Z
    assert k is not None
    assert abs(k - 1900) <= 15
    caught = 0
    for _ in range(20):
        mild = (rng.random(1600) > 0.1).tolist() + (rng.random(400) > 0.2).tolist()
        caught += detect.change_point(mild)[1] >= detect.ALARM_Z
    assert caught >= 17


def test_change_point_takes_the_exact_tail_of_every_split_it_could_choose() -> None:
    """The detector computes the exact hypergeometric tail only for the splits its
    estimate ranks most improbable; on streams of up to 4,000 rows, stable or with a
    rise, at 0.3 % to 45 % error, it answers what the exact tail of every split gives."""
    from scipy.stats import hypergeom, norm

    def exhaustive(correct: list[bool], min_side: int = 20) -> tuple[int | None, float]:
        errors = 1 - np.asarray(correct, dtype=np.int64)
        n, total = len(errors), int(errors.sum())
        k = np.arange(min_side, n - min_side + 1)
        after = total - np.cumsum(errors)[k - 1]
        rising = after * n > total * (n - k)
        if total in (0, n) or not rising.any():
            return None, 0.0
        p = hypergeom.sf(after[rising] - 1, n, total, (n - k)[rising])
        best = int(np.argmin(p))
        return int(k[rising][best]), float(norm.isf(max(float(p[best]), 1e-300)))

    rng = np.random.default_rng(3)
    for trial in range(150):
        n = int(rng.integers(300, 4000))
        rate = float(rng.choice([0.003, 0.01, 0.05, 0.2, 0.45]))
        flags = rng.random(n) > rate
        if trial % 2:
            at = int(rng.integers(n // 4, n))
            flags[at:] = rng.random(n - at) > min(0.9, 2 * rate)
        got_k, got_z = detect.change_point(flags.tolist())
        want_k, want_z = exhaustive(flags.tolist())
        assert got_k == want_k, trial
        assert got_z == pytest.approx(want_z, rel=1e-8, abs=1e-9), trial  # core.tails, not scipy


YOUNG = with_(fit_rows=50, rows_since_change=100, refresh_until=1000)


@pytest.mark.parametrize(
    ("changes", "decision"),
    [
        ({}, "retrain"),  # twice the rows the young champion learnt from
        ({"rows_since_change": 99}, "ok"),
        ({"samples": 20, "accuracy": 0.95}, "retrain"),  # before min_samples too
        ({"last_refresh_rows": 100, "rows_since_change": 150}, "ok"),  # asked at 100
        ({"last_refresh_rows": 100, "rows_since_change": 200}, "retrain"),
        ({"fit_rows": 1000, "rows_since_change": 5000}, "ok"),  # grown up
        ({"fit_rows": None, "rows_since_change": 5000}, "ok"),  # no change was located
        ({"last_retrain_at": 990.0}, "cooldown"),
    ],
)
def test_young_champion_is_refitted_as_the_rows_since_the_change_double(
    changes: dict[str, object], decision: str
) -> None:
    """A champion fitted on the few rows after a change is refitted each time they
    double, until it has learnt from ``refresh_until`` rows; never without a change."""
    import msgspec

    verdict = policy.decide(msgspec.structs.replace(YOUNG, **changes))
    assert verdict.decision == decision
    assert verdict.refresh is (decision == "retrain")


def test_drift_statistics_flag_a_shift_and_not_noise() -> None:
    """PSI/KS flag a shifted numeric feature and a changed category mix; same data is quiet."""
    rng = np.random.default_rng(1)
    schema = FeatureSchema((Feature("x", "numeric"), Feature("c", "categorical")), "target", "int")
    train = [{"x": float(v), "c": "a" if v > 0 else "b"} for v in rng.normal(0, 1, 3000)]
    ref = drift.reference(train, schema)
    same = [{"x": float(v), "c": "a" if v > 0 else "b"} for v in rng.normal(0, 1, 1000)]
    quiet = drift.compare(ref, same)
    assert quiet.drifted_share == 0.0
    shifted = [{"x": float(v), "c": "c"} for v in rng.normal(1.5, 1, 1000)]
    loud = drift.compare(ref, shifted)
    assert [(f.feature, f.drifted, f.test) for f in loud.features] == [
        ("x", True, "ks"),
        ("c", True, "chi2"),
    ]
    assert loud.drifted_share == 1.0
    assert loud.features[0].psi > 0.2


def test_validation_names_row_and_field() -> None:
    """Validation errors say which row and which field, and classify oversized batches."""
    schema = infer_schema({"a": 1.0, "b": "x", "target": 1}, "target", "rows[0]")
    assert schema.features == (Feature("a", "numeric"), Feature("b", "categorical"))
    ok = validate_labelled([{"a": 1, "b": "y", "target": 0}], schema, 10)
    assert ok.rows == [{"a": 1.0, "b": "y"}]
    with pytest.raises(InvalidInput, match=r"rows\[1\]\.a: must be a finite number"):
        validate_labelled(
            [{"a": 1, "b": "y", "target": 0}, {"a": float("nan"), "b": "y", "target": 0}],
            schema,
            10,
        )
    with pytest.raises(PayloadTooLarge):
        validate_unlabelled([{"a": 1, "b": "y"}] * 11, schema, 10)
    with pytest.raises(InvalidInput, match=r"features\[0\]: unknown feature 'z'"):
        validate_unlabelled([{"a": 1, "b": "y", "z": 2}], schema, 10, "features")


def test_schema_spec_from_configuration() -> None:
    """CONTINUAL_FEATURES declares kinds and the label type."""
    schema = parse_schema_spec("age:numeric, city:categorical, target:str", "target")
    assert schema == FeatureSchema(
        (Feature("age", "numeric"), Feature("city", "categorical")), "target", "str"
    )
    with pytest.raises(ValueError, match="numeric or categorical"):
        parse_schema_spec("age:date", "target")


CAPACITY = Capacity(
    version="3",
    level=0.74,
    samples=500,
    best=0.73,
    families=["logistic_regression", "hist_gradient_boosting"],
    declared_at=900.0,
    row_id=4000,
    drifted=["feature1"],
    backoff_seconds=3600.0,
    retry_at=4500.0,
    trigger="threshold",
)
AT_CAPACITY = with_(accuracy=0.74, samples=500, capacity=CAPACITY, rows_since_capacity=300)


@pytest.mark.parametrize(
    ("changes", "decision", "trigger"),
    [
        ({}, "ok", ""),  # below the threshold, but nothing changed: no retrain storm
        ({"detector_fired": True}, "ok", ""),  # the change that was already tried
        ({"detector_fired": True, "change_after_capacity": True}, "retrain", "detector"),
        ({"new_drift": ("feature2",)}, "retrain", "drift"),
        ({"accuracy": 0.69}, "ok", ""),  # within two standard errors of the difference
        ({"accuracy": 0.68}, "retrain", "fall"),
        ({"now": 4500.0}, "retrain", "backoff"),  # the back-off ran out, with new rows
        ({"now": 4500.0, "rows_since_capacity": 10}, "ok", ""),  # but not on the same rows
        ({"accuracy": 0.68, "last_retrain_at": 990.0}, "cooldown", "fall"),
        (
            {"fit_rows": 500, "rows_since_change": 1000, "refresh_until": 50_000},
            "retrain",
            "refresh",
        ),
    ],
)
def test_at_capacity_only_a_change_starts_a_retrain(
    changes: dict[str, object], decision: str, trigger: str
) -> None:
    """At capacity the threshold alone starts nothing; a change point after it, a newly
    drifting feature, a fall below the level reached, a back-off or a refresh do."""
    import msgspec

    verdict = policy.decide(msgspec.structs.replace(AT_CAPACITY, **changes))
    assert (verdict.decision, verdict.trigger) == (decision, trigger)


def test_at_capacity_says_what_it_waits_for() -> None:
    """The check's reason names the capacity, the best the pool reached and the wait."""
    verdict = policy.decide(AT_CAPACITY)
    assert verdict.reason == (
        "at capacity: live accuracy 0.740 is below threshold 0.800, and retraining found "
        "nothing better (best of 2 families 0.730); waiting for a change in the data"
    )
    assert policy.fall_margin(0.74, 500, 500) == pytest.approx(2 * (0.74 * 0.26 * 2 / 500) ** 0.5)
    assert policy.fall_margin(1.0, 500, 500) == 0.01
