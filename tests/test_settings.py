"""Settings: one object from the environment and .env, validated at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from continual.settings import SettingsError, load_settings


def test_defaults_put_everything_under_the_data_dir(tmp_path: Path) -> None:
    """With nothing set: 127.0.0.1:8000, SQLite and MLflow under ./data."""
    s = load_settings({"CONTINUAL_DATA_DIR": str(tmp_path)}, env_file=None)
    assert (s.host, s.port, s.performance_threshold) == ("127.0.0.1", 8000, 0.8)
    assert s.database_url == f"sqlite:///{tmp_path}/continual.db"
    assert s.mlflow_tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert s.api_key is None
    assert s.check_interval_seconds == 30


def test_original_names_and_prefixed_ones(tmp_path: Path) -> None:
    """The design's names are honoured; CHECK_INTERVAL_SECONDS works with or without prefix."""
    env = {
        "API_KEY": "k",
        "PERFORMANCE_THRESHOLD": "0.9",
        "CHECK_INTERVAL_SECONDS": "5",
        "CONTINUAL_EVAL_WINDOW": "300",
        "CONTINUAL_MODEL": "random_forest",
        "DATABASE_URL": "postgresql+psycopg://u:p@h/db",
        "DISCORD_WEBHOOK_URL": "https://discord.example/api/webhooks/1/secret",
    }
    s = load_settings(env, env_file=None)
    assert (s.performance_threshold, s.check_interval_seconds, s.eval_window, s.models) == (
        0.9,
        5.0,
        300,
        ("random_forest",),
    )
    assert s.database_url.startswith("postgresql")
    assert "secret" not in repr(s)
    assert s.discord_webhook_url is not None
    assert s.discord_webhook_url.value.endswith("secret")


def test_every_bad_value_is_named_at_once() -> None:
    """A bad value stops start-up with a message naming each variable; secrets are masked."""
    env = {
        "PERFORMANCE_THRESHOLD": "1.5",
        "CONTINUAL_PORT": "http",
        "CONTINUAL_MODEL": "xgboost",
        "SLACK_WEBHOOK_URL": "not-a-url-secret",
    }
    with pytest.raises(SettingsError) as err:
        load_settings(env, env_file=None)
    text = str(err.value)
    for name in ("PERFORMANCE_THRESHOLD", "CONTINUAL_PORT", "CONTINUAL_MODEL", "SLACK_WEBHOOK_URL"):
        assert name in text
    assert "not-a-url-secret" not in text


def test_model_pool_and_its_one_family_form() -> None:
    """CONTINUAL_MODELS is a pool in the order given; CONTINUAL_MODEL is one family; the
    pool wins when both are set; the default pool is linear plus gradient boosting."""
    assert load_settings({}, env_file=None).models == (
        "logistic_regression",
        "hist_gradient_boosting",
    )
    pool = load_settings(
        {"CONTINUAL_MODELS": " random_forest, sgd ,random_forest", "CONTINUAL_MODEL": "sgd"},
        env_file=None,
    )
    assert pool.models == ("random_forest", "sgd")
    assert load_settings({"CONTINUAL_MODEL": "sgd"}, env_file=None).models == ("sgd",)
    for env in ({"CONTINUAL_MODELS": "sgd,xgboost"}, {"CONTINUAL_MODELS": " , "}):
        with pytest.raises(SettingsError, match="CONTINUAL_MODELS"):
            load_settings(env, env_file=None)
    with pytest.raises(SettingsError, match="CONTINUAL_MODEL: one model family"):
        load_settings({"CONTINUAL_MODEL": "sgd,random_forest"}, env_file=None)


def test_env_file_and_flags(tmp_path: Path) -> None:
    """.env is read, the environment beats it, and flags beat both."""
    env_file = tmp_path / ".env"
    env_file.write_text("CONTINUAL_PORT=9001\nCONTINUAL_MIN_SAMPLES=77\n")
    s = load_settings({"CONTINUAL_PORT": "9002"}, env_file=env_file)
    assert (s.port, s.min_samples) == (9002, 77)
    s = load_settings({"CONTINUAL_PORT": "9002"}, env_file=env_file, port=9003)
    assert s.port == 9003
