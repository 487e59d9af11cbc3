"""Alert thresholds from the user's TOML file: the per-user default, ``--config``, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from termmon.analysis.alerts import AlertConfig, default_config_path, load_alert_config
from termmon.errors import UsageError


@pytest.fixture(autouse=True)
def user_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_means_the_defaults() -> None:
    assert load_alert_config(None) == AlertConfig()


def test_the_per_user_file_is_read_when_present(user_config_home: Path) -> None:
    write(user_config_home / "termmon" / "config.toml", "[alerts.low_gpu_util]\nthreshold = 15\n")
    assert default_config_path() == user_config_home / "termmon" / "config.toml"
    assert load_alert_config(None).low_gpu_util.threshold == 15.0


def test_home_config_is_the_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_config_path() == tmp_path / ".config" / "termmon" / "config.toml"


def test_an_explicit_file_sets_thresholds_and_switches(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mine.toml",
        """
[tui]
theme = "dark"   # other features' tables are not the alert engine's business

[alerts.exploding_gradients]
abs_threshold = 500
ratio = 20.5
metrics = ["grad_norm", "gradients/encoder/norm"]

[alerts.loss_plateau]
enabled = false
""",
    )
    config = load_alert_config(path)
    assert config.exploding_gradients.abs_threshold == 500.0
    assert isinstance(config.exploding_gradients.abs_threshold, float)
    assert config.exploding_gradients.ratio == 20.5
    assert config.exploding_gradients.metrics == ("grad_norm", "gradients/encoder/norm")
    assert config.loss_plateau.enabled is False
    assert config.nan_inf == AlertConfig().nan_inf


def test_an_explicit_file_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"config file not found: .*missing\.toml"):
        load_alert_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[alerts.exploding]\nratio = 3\n",
            r"bad\.toml: unknown detector 'alerts\.exploding' \(allowed: .*exploding_gradients.*\)",
        ),
        (
            "[alerts.exploding_gradients]\nthreshold = 3\n",
            r"bad\.toml: 'alerts\.exploding_gradients\.threshold': unknown key \(allowed: abs_threshold, enabled, metrics, min_history, ratio, rearm_points, window\)",
        ),
        (
            '[alerts.exploding_gradients]\nratio = "big"\n',
            r"'alerts\.exploding_gradients\.ratio' must be a finite number, not 'big'",
        ),
        ("[alerts.exploding_gradients]\nratio = true\n", r"ratio' must be a finite number, not True"),
        ("[alerts.exploding_gradients]\nratio = 0.5\n", r"ratio' must be > 1, not 0\.5"),
        ("[alerts.exploding_gradients]\nratio = nan\n", r"ratio' must be a finite number, not nan"),
        (
            "[alerts.vanishing_gradients]\nconsecutive = 2.5\n",
            r"consecutive' must be a whole number, not 2\.5",
        ),
        ("[alerts.vanishing_gradients]\nconsecutive = 0\n", r"consecutive' must be >= 1, not 0"),
        ("[alerts.low_gpu_util]\nthreshold = 150\n", r"threshold' must be > 0 and <= 100, not 150"),
        ('[alerts.nan_inf]\nenabled = "no"\n', r"enabled' must be true or false, not 'no'"),
        ('[alerts.exploding_gradients]\nmetrics = "grad_norm"\n', r"metrics' must be a list of metric names"),
        (
            "[alerts.loss_plateau]\nmin_window = 600\nmax_window = 100\n",
            r"min_window \(600\) exceeds max_window \(100\)",
        ),
        ("alerts = 3\n", r"'alerts' must be a table"),
        ("[alerts]\nnan_inf = 1\n", r"'alerts\.nan_inf' must be a table"),
        ("[alerts\n", r"bad\.toml: invalid TOML"),
    ],
)
def test_bad_files_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(UsageError, match=message) as caught:
        load_alert_config(path)
    assert "\n" not in str(caught.value)
    assert str(path) in str(caught.value)
