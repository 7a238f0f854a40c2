"""One typed settings object, read once from the environment (and ``.env``) at start-up.

Names follow the design brief: a few unprefixed originals (``API_KEY``,
``PERFORMANCE_THRESHOLD``, ``DATABASE_URL``, ...) and the rest under ``CONTINUAL_``.
Every bad value is reported at once, with the variable's name, before anything starts.
Secrets are held as ``Secret`` so that a repr or a log line never shows them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast, get_args

import msgspec

from continual.core.types import MODEL_TYPES, FeatureSchema, ModelType, TrainStrategy

DEFAULT_ENV_FILE = ".env"


class Secret(msgspec.Struct, frozen=True):
    """A string that never shows itself in repr, str or logs."""

    value: str

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


class SettingsError(ValueError):
    """One or more settings are invalid; ``problems`` names each variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))
        self.problems = problems


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything configurable. Built once by ``load_settings`` and passed down."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    database_url: str = ""
    mlflow_tracking_uri: str = ""
    api_key: Secret | None = None
    dashboard_password: Secret | None = None
    dashboard_enabled: bool = True
    dashboard_session_hours: float = 8.0
    performance_threshold: float = 0.8
    check_interval_seconds: float = 30.0
    scheduler_enabled: bool = True
    eval_window: int = 500
    min_samples: int = 200
    train_window: int = 5000
    train_strategy: TrainStrategy = "window"
    replay_fraction: float = 0.2
    holdout_fraction: float = 0.2
    min_improvement: float = 0.005
    cooldown_seconds: float = 60.0
    # the challenger pool: every retrain fits each family and the gate picks the best
    models: tuple[ModelType, ...] = ("logistic_regression", "hist_gradient_boosting")
    # the window search looks back at most this many rows (and never past the last
    # located change) beyond ``train_window``; a champion grows to this many rows
    history_rows: int = 50_000
    search_seconds: float = 60.0  # the window search's time budget per retrain
    capacity_backoff_seconds: float = 3600.0  # first retry at capacity; doubles
    seed: int = 42
    label_column: str = "target"
    features: FeatureSchema | None = None
    registered_model_name: str = "continual"
    experiment_name: str = "continual"
    max_body_bytes: int = 64 * 1024 * 1024
    max_batch_rows: int = 100_000
    max_generate_rows: int = 1_000_000
    retrain_timeout_seconds: float = 900.0
    mlflow_timeout_seconds: float = 10.0
    mlflow_max_retries: int = 2
    prediction_flush_seconds: float = 0.5
    prediction_buffer_max: int = 200_000
    model_sync_seconds: float = 2.0
    discord_webhook_url: Secret | None = None
    slack_webhook_url: Secret | None = None
    webhook_url: Secret | None = None
    kuma_push_url: Secret | None = None
    alert_timeout_seconds: float = 5.0
    log_level: str = "info"
    log_json: bool | None = None
    replica_id: str = ""
    # a lease's time to live; its holder renews it every third of this, and another
    # replica takes it over within 4/3 of it after the holder died
    lease_ttl_seconds: float = 15.0
    rate_limit_writes: int = 0
    rate_limit_predict: int = 0
    rate_limit_auth_failures: int = 120
    trusted_proxies: tuple[str, ...] = ()
    # a log line for every request costs ~10 % of a request; errors and slow requests are
    # always logged, so production wants a sample of the rest
    access_log: str = "sampled"
    access_log_sample: float = 0.01
    slow_request_ms: float = 1000.0
    # the check may retrain on the estimated accuracy while realized accuracy lacks rows
    act_on_estimate: bool = False
    # data quality: out of range by more than this share of the training range
    quality_margin: float = 0.1
    quality_alert_share: float = 0.01  # a feature with more issues than this share alerts
    # trials: a canary answers this share of traffic; a challenger close to the gate
    # but not over it goes into shadow by itself
    canary_percent: float = 10.0
    auto_shadow: bool = True
    shadow_queue_max: int = 50_000  # requests waiting for the shadow; more are not shadowed

    @property
    def models_dir(self) -> Path:
        """Where verified local copies of registered models live."""
        return self.data_dir / "models"

    @property
    def api_key_file(self) -> Path:
        """Where a generated API key is stored."""
        return self.data_dir / "api_key"


# variable name -> (field, parser); the first variable present for a field wins.
def _float(raw: str) -> float:
    return float(raw)


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def _families(raw: str) -> tuple[ModelType, ...]:
    """A comma-separated pool of model families, in the order of preference given."""
    names = [part.strip().lower() for part in raw.split(",") if part.strip()]
    if not names:
        raise ValueError(f"expected a comma-separated list of {', '.join(MODEL_TYPES)}")
    for name in names:
        if name not in MODEL_TYPES:
            raise ValueError(f"unknown model {name!r}: expected some of {', '.join(MODEL_TYPES)}")
    return tuple(dict.fromkeys(cast(ModelType, n) for n in names))


def _family(raw: str) -> tuple[ModelType, ...]:
    if "," in raw:
        raise ValueError("one model family; use CONTINUAL_MODELS for a pool")
    return _families(raw)


def _secret(raw: str) -> Secret | None:
    return Secret(raw) if raw else None


def _url_secret(raw: str) -> Secret | None:
    if not raw:
        return None
    if not raw.startswith(("http://", "https://")):
        raise ValueError("expected an http(s) URL")
    return Secret(raw)


def _per_minute(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected requests per minute, 0 or more (0 turns the limit off)")
    return value


def _networks(raw: str) -> tuple[str, ...]:
    from continual.core.ratelimit import parse_networks

    return tuple(str(net) for net in parse_networks(raw.split(",")))


_VARS: list[tuple[str, str, Callable[[str], Any]]] = [
    ("CONTINUAL_HOST", "host", str),
    ("CONTINUAL_PORT", "port", int),
    ("CONTINUAL_DATA_DIR", "data_dir", Path),
    ("DATABASE_URL", "database_url", str),
    ("MLFLOW_TRACKING_URI", "mlflow_tracking_uri", str),
    ("API_KEY", "api_key", _secret),
    ("CONTINUAL_DASHBOARD_PASSWORD", "dashboard_password", _secret),
    ("CONTINUAL_DASHBOARD", "dashboard_enabled", _bool),
    ("CONTINUAL_DASHBOARD_SESSION_HOURS", "dashboard_session_hours", _float),
    ("PERFORMANCE_THRESHOLD", "performance_threshold", _float),
    ("CONTINUAL_CHECK_INTERVAL_SECONDS", "check_interval_seconds", _float),
    ("CHECK_INTERVAL_SECONDS", "check_interval_seconds", _float),
    ("CONTINUAL_SCHEDULER", "scheduler_enabled", _bool),
    ("CONTINUAL_EVAL_WINDOW", "eval_window", int),
    ("CONTINUAL_MIN_SAMPLES", "min_samples", int),
    ("CONTINUAL_TRAIN_WINDOW", "train_window", int),
    ("CONTINUAL_TRAIN_STRATEGY", "train_strategy", _choice(get_args(TrainStrategy))),
    ("CONTINUAL_REPLAY_FRACTION", "replay_fraction", _float),
    ("CONTINUAL_HOLDOUT_FRACTION", "holdout_fraction", _float),
    ("CONTINUAL_MIN_IMPROVEMENT", "min_improvement", _float),
    ("CONTINUAL_COOLDOWN_SECONDS", "cooldown_seconds", _float),
    ("CONTINUAL_MODELS", "models", _families),
    ("CONTINUAL_MODEL", "models", _family),  # the one-family form
    ("CONTINUAL_HISTORY_ROWS", "history_rows", int),
    ("CONTINUAL_SEARCH_SECONDS", "search_seconds", _float),
    ("CONTINUAL_CAPACITY_BACKOFF_SECONDS", "capacity_backoff_seconds", _float),
    ("CONTINUAL_SEED", "seed", int),
    ("CONTINUAL_LABEL_COLUMN", "label_column", str),
    ("CONTINUAL_FEATURES", "features", str),
    ("CONTINUAL_MODEL_NAME", "registered_model_name", str),
    ("CONTINUAL_EXPERIMENT", "experiment_name", str),
    ("CONTINUAL_MAX_BODY_BYTES", "max_body_bytes", int),
    ("CONTINUAL_MAX_BATCH_ROWS", "max_batch_rows", int),
    ("CONTINUAL_MAX_GENERATE_ROWS", "max_generate_rows", int),
    ("CONTINUAL_RETRAIN_TIMEOUT_SECONDS", "retrain_timeout_seconds", _float),
    ("CONTINUAL_MLFLOW_TIMEOUT_SECONDS", "mlflow_timeout_seconds", _float),
    ("CONTINUAL_MLFLOW_MAX_RETRIES", "mlflow_max_retries", int),
    ("CONTINUAL_PREDICTION_FLUSH_SECONDS", "prediction_flush_seconds", _float),
    ("CONTINUAL_PREDICTION_BUFFER_MAX", "prediction_buffer_max", int),
    ("CONTINUAL_MODEL_SYNC_SECONDS", "model_sync_seconds", _float),
    ("DISCORD_WEBHOOK_URL", "discord_webhook_url", _url_secret),
    ("SLACK_WEBHOOK_URL", "slack_webhook_url", _url_secret),
    ("CONTINUAL_WEBHOOK_URL", "webhook_url", _url_secret),
    ("CONTINUAL_KUMA_PUSH_URL", "kuma_push_url", _url_secret),
    ("CONTINUAL_ALERT_TIMEOUT_SECONDS", "alert_timeout_seconds", _float),
    ("CONTINUAL_LOG_LEVEL", "log_level", _choice(("debug", "info", "warning", "error"))),
    ("CONTINUAL_LOG_JSON", "log_json", _bool),
    ("CONTINUAL_REPLICA_ID", "replica_id", str),
    ("CONTINUAL_LEASE_TTL_SECONDS", "lease_ttl_seconds", _float),
    ("CONTINUAL_RATE_LIMIT_WRITES", "rate_limit_writes", _per_minute),
    ("CONTINUAL_RATE_LIMIT_PREDICT", "rate_limit_predict", _per_minute),
    ("CONTINUAL_RATE_LIMIT_AUTH_FAILURES", "rate_limit_auth_failures", _per_minute),
    ("CONTINUAL_TRUSTED_PROXIES", "trusted_proxies", _networks),
    ("CONTINUAL_ACCESS_LOG", "access_log", _choice(("on", "sampled", "off"))),
    ("CONTINUAL_ACCESS_LOG_SAMPLE", "access_log_sample", _float),
    ("CONTINUAL_SLOW_REQUEST_MS", "slow_request_ms", _float),
    ("CONTINUAL_ACT_ON_ESTIMATE", "act_on_estimate", _bool),
    ("CONTINUAL_QUALITY_MARGIN", "quality_margin", _float),
    ("CONTINUAL_QUALITY_ALERT_SHARE", "quality_alert_share", _float),
    ("CONTINUAL_CANARY_PERCENT", "canary_percent", _float),
    ("CONTINUAL_AUTO_SHADOW", "auto_shadow", _bool),
    ("CONTINUAL_SHADOW_QUEUE_MAX", "shadow_queue_max", int),
]

ENV_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _VARS)


def _ranges(s: dict[str, Any]) -> list[str]:
    problems: list[str] = []

    def need(cond: bool, var: str, msg: str) -> None:
        if not cond:
            problems.append(f"{var}: {msg} (got {s.get(_FIELD_OF[var])!r})")

    need(0.0 < s["performance_threshold"] <= 1.0, "PERFORMANCE_THRESHOLD", "must be in (0, 1]")
    need(1 <= s["port"] <= 65535, "CONTINUAL_PORT", "must be a port number 1-65535")
    need(s["check_interval_seconds"] > 0, "CHECK_INTERVAL_SECONDS", "must be positive")
    need(s["eval_window"] >= 10, "CONTINUAL_EVAL_WINDOW", "must be at least 10")
    need(s["min_samples"] >= 1, "CONTINUAL_MIN_SAMPLES", "must be at least 1")
    need(s["train_window"] >= 20, "CONTINUAL_TRAIN_WINDOW", "must be at least 20")
    need(
        s["history_rows"] >= s["train_window"],
        "CONTINUAL_HISTORY_ROWS",
        "must be at least CONTINUAL_TRAIN_WINDOW",
    )
    need(s["search_seconds"] > 0, "CONTINUAL_SEARCH_SECONDS", "must be positive")
    need(0.0 < s["access_log_sample"] <= 1.0, "CONTINUAL_ACCESS_LOG_SAMPLE", "must be in (0, 1]")
    need(s["slow_request_ms"] > 0, "CONTINUAL_SLOW_REQUEST_MS", "must be positive")
    need(
        s["capacity_backoff_seconds"] > 0,
        "CONTINUAL_CAPACITY_BACKOFF_SECONDS",
        "must be positive",
    )
    need(0.0 <= s["replay_fraction"] < 1.0, "CONTINUAL_REPLAY_FRACTION", "must be in [0, 1)")
    need(
        0.05 <= s["holdout_fraction"] <= 0.5, "CONTINUAL_HOLDOUT_FRACTION", "must be in [0.05, 0.5]"
    )
    need(0.0 <= s["min_improvement"] < 1.0, "CONTINUAL_MIN_IMPROVEMENT", "must be in [0, 1)")
    need(s["cooldown_seconds"] >= 0, "CONTINUAL_COOLDOWN_SECONDS", "must not be negative")
    need(s["max_body_bytes"] >= 1024, "CONTINUAL_MAX_BODY_BYTES", "must be at least 1024")
    need(s["max_batch_rows"] >= 1, "CONTINUAL_MAX_BATCH_ROWS", "must be at least 1")
    need(
        1 <= s["max_generate_rows"] <= 1_000_000,
        "CONTINUAL_MAX_GENERATE_ROWS",
        "must be 1 to 1000000",
    )
    need(s["retrain_timeout_seconds"] > 0, "CONTINUAL_RETRAIN_TIMEOUT_SECONDS", "must be positive")
    need(s["mlflow_timeout_seconds"] > 0, "CONTINUAL_MLFLOW_TIMEOUT_SECONDS", "must be positive")
    need(s["prediction_buffer_max"] >= 100, "CONTINUAL_PREDICTION_BUFFER_MAX", "must be >= 100")
    need(s["lease_ttl_seconds"] >= 3, "CONTINUAL_LEASE_TTL_SECONDS", "must be at least 3")
    need(s["alert_timeout_seconds"] > 0, "CONTINUAL_ALERT_TIMEOUT_SECONDS", "must be positive")
    need(bool(s["label_column"]), "CONTINUAL_LABEL_COLUMN", "must not be empty")
    need(s["quality_margin"] >= 0, "CONTINUAL_QUALITY_MARGIN", "must not be negative")
    need(
        0.0 < s["quality_alert_share"] <= 1.0, "CONTINUAL_QUALITY_ALERT_SHARE", "must be in (0, 1]"
    )
    need(0.0 < s["canary_percent"] <= 100.0, "CONTINUAL_CANARY_PERCENT", "must be in (0, 100]")
    need(s["shadow_queue_max"] >= 100, "CONTINUAL_SHADOW_QUEUE_MAX", "must be at least 100")
    url = s["database_url"]
    need(
        not url or url.startswith(("sqlite:///", "postgresql")),
        "DATABASE_URL",
        "must start with sqlite:/// or postgresql",
    )
    return problems


_FIELD_OF = {name: field for name, field, _ in _VARS}


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = Path(DEFAULT_ENV_FILE),
    **overrides: Any,
) -> Settings:
    """Build the settings from ``environ`` (default ``os.environ``) over ``env_file``.

    ``overrides`` (command-line flags) win over both. Raises ``SettingsError`` naming
    every bad variable.
    """
    from dotenv import dotenv_values

    source: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        source.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    source.update(os.environ if environ is None else environ)

    values: dict[str, Any] = {}
    problems: list[str] = []
    features_spec: str | None = None
    for name, field, parse in _VARS:
        if field in values or name not in source:
            continue
        raw = source[name].strip()
        try:
            parsed = parse(raw)
        except (ValueError, TypeError) as exc:
            shown = "**********" if field.endswith(("key", "password", "url")) else raw
            problems.append(f"{name}: {exc} (got {shown!r})")
            continue
        if field == "features":
            features_spec = parsed
            continue
        values[field] = parsed
    values.update({k: v for k, v in overrides.items() if v is not None})
    merged = {f: getattr(Settings(), f) for f in Settings.__struct_fields__}
    merged.update(values)
    problems.extend(_ranges(merged))
    if features_spec:
        from continual.core.schema import parse_schema_spec

        try:
            values["features"] = parse_schema_spec(features_spec, merged["label_column"])
        except ValueError as exc:
            problems.append(f"CONTINUAL_FEATURES: {exc}")
    if problems:
        raise SettingsError(problems)

    data_dir = Path(merged["data_dir"]).expanduser().resolve()
    values["data_dir"] = data_dir
    if not merged["database_url"]:
        values["database_url"] = f"sqlite:///{data_dir / 'continual.db'}"
    if not merged["mlflow_tracking_uri"]:
        values["mlflow_tracking_uri"] = f"sqlite:///{data_dir / 'mlflow.db'}"
    if not merged["replica_id"]:
        values["replica_id"] = f"{socket.gethostname()}-{os.getpid()}"
    return Settings(**values)
