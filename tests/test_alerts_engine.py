"""The engine: incremental updates equal one pass, one alert per episode across the trainer's own alerts,
re-reads start over, the DESIGN.md record shape."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from termmon.analysis.alerts import AlertConfig, AlertEngine, Severity, parse_alert_config
from termmon.model.run import Run
from tests.runs import feed, make_records, make_run, run_of


def troubled_records(more_alerts: tuple[dict[str, Any], ...] = ()) -> list[dict[str, Any]]:
    """One run with something of everything: NaN, spikes, vanishing gradients, a plateau, overfitting,
    collapse, low utilisation, diagnostics and trainer-written alerts (and ``more_alerts``)."""
    rng = np.random.default_rng(7)
    n = 2400
    s = np.arange(n)
    loss = (0.8 + 2 * np.exp(-np.minimum(s, 700) / 150)) * (1 + 0.05 * rng.standard_normal(n))
    loss[[1500, 1502]] = np.nan
    grad = np.exp(0.3 * rng.standard_normal(n))
    grad[[400, 900, 1600]] = [3000.0, 80.0, 400.0]
    grad[2000:2010] = 1e-6
    util = np.full(n, 90.0)
    util[1000:1100] = 7
    ratio = np.full(n, 0.1)
    ratio[1800:1850] = 0.95
    e = np.arange(24)
    test = np.where(e <= 14, 1.5 * np.exp(-e / 6) + 0.4, 0.0)
    test[15:] = test[14] * 1.05 ** np.arange(1, 10)
    alerts = [
        {
            "event": "alert",
            "step": 4010,
            "kind": "exploding_gradients",
            "severity": "critical",
            "message": "spike",
        },
        {"event": "alert", "step": 15010, "kind": "nan_inf", "severity": "critical", "message": "NaN loss"},
        {
            "event": "alert",
            "step": 200,
            "kind": "telemetry",
            "severity": "warning",
            "message": "wandb is off",
        },
        *more_alerts,
    ]
    return make_records(
        n,
        {"train_loss": loss, "grad_norm": grad, "gpu_util": util, "collapse/most_common_ratio": ratio},
        epoch_metrics={
            "train/loss": 2 * np.exp(-e / 5) + 0.1,
            "test/loss": test,
            "diagnostics/n_clusters_dbscan": np.minimum(1 + e // 8, 3),
            "diagnostics/silhouette_score": np.linspace(0.2, 0.8, 24),
        },
        events=alerts,
    )


RECORDS = troubled_records()


def one_pass(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    run = feed(Run(Path("one-pass")), records)
    return [a.to_dict() for a in AlertEngine().update(run, now=run.last_time)]


ONE_PASS = one_pass(RECORDS)


def test_the_troubled_run_raises_each_kind() -> None:
    kinds = {a["kind"] for a in ONE_PASS}
    assert kinds >= {
        "nan_inf",
        "exploding_gradients",
        "vanishing_gradients",
        "loss_plateau",
        "overfitting",
        "low_gpu_util",
        "model_collapse",
        "blob_formed",
        "silhouette_crossed",
        "telemetry",
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=len(RECORDS) - 1), max_size=12, unique=True))
def test_incremental_updates_over_any_split_equal_one_pass(cuts: list[int]) -> None:
    run = Run(Path("incremental"))
    engine = AlertEngine()
    seen: list[dict[str, Any]] = []
    bounds = [0, *sorted(cuts), len(RECORDS)]
    for lo, hi in pairwise(bounds):
        feed(run, RECORDS[lo:hi])
        seen.extend(a.to_dict() for a in engine.update(run, now=run.last_time))
    assert _comparable(seen) == _comparable(ONE_PASS)
    assert _comparable([a.to_dict() for a in engine.alerts_for(run)]) == _comparable(ONE_PASS)


def _trainer_alert(step: int, kind: str) -> dict[str, Any]:
    return {"event": "alert", "step": step, "kind": kind, "severity": "warning", "message": f"trainer {kind}"}


#: The trainer's alerts of two trend kinds: a plateau after the detected one (the same episode, dropped)
#: and overfitting before the detection (kept; the detection is dropped).
TREND_RECORDS = troubled_records(
    (_trainer_alert(10060, "loss_plateau"), _trainer_alert(17950, "overfitting"))
)
TREND_ONE_PASS = one_pass(TREND_RECORDS)


def _by_kind(alerts: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    kinds: dict[str, list[tuple[Any, ...]]] = {}
    for alert, key in zip(alerts, _comparable(alerts), strict=True):
        kinds.setdefault(alert["kind"], []).append(key)
    return kinds


def test_the_trainers_trend_alerts_keep_one_per_episode() -> None:
    plateau = [(a["step"], a["message"][:7]) for a in TREND_ONE_PASS if a["kind"] == "loss_plateau"]
    assert plateau == [(10020, "train_l")]
    overfitting = [(a["step"], a["message"]) for a in TREND_ONE_PASS if a["kind"] == "overfitting"]
    assert overfitting == [(17950, "trainer overfitting")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(min_value=1, max_value=len(TREND_RECORDS) - 1), max_size=12, unique=True),
    st.lists(st.booleans(), min_size=1, max_size=12),
)
def test_updates_without_the_trends_end_with_the_same_alerts(cuts: list[int], trends: list[bool]) -> None:
    """The live monitor leaves the trend detectors out of most updates: once an update brings them in,
    every kind has the alerts of one pass, in the same order, the trainer's included."""
    run = Run(Path("trends"))
    engine = AlertEngine()
    seen: list[dict[str, Any]] = []
    bounds = [0, *sorted(cuts), len(TREND_RECORDS)]
    for i, (lo, hi) in enumerate(pairwise(bounds)):
        feed(run, TREND_RECORDS[lo:hi])
        last = hi == len(TREND_RECORDS)
        seen.extend(
            a.to_dict() for a in engine.update(run, now=run.last_time, trends=last or trends[i % len(trends)])
        )
    assert _by_kind(seen) == _by_kind(TREND_ONE_PASS)


def _comparable(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """NaN != NaN: compare values through their repr."""
    return [
        tuple(repr(v) if isinstance(v, float) and math.isnan(v) else v for v in a.values()) for a in alerts
    ]


def test_a_trainer_alert_next_to_a_detected_one_is_the_same_episode() -> None:
    exploding = [a for a in ONE_PASS if a["kind"] == "exploding_gradients"]
    # the detected spike at step 4,010 comes first in the file: the trainer's alert there is dropped
    assert [a["step"] for a in exploding] == [4010, 9010, 16010]
    assert "spike" not in [a["message"] for a in exploding]
    nan = [a for a in ONE_PASS if a["kind"] == "nan_inf"]
    assert [(a["step"], a["message"].split(";")[0]) for a in nan] == [
        (15010, "train_loss is NaN at step 15,010")
    ]
    telemetry = [a for a in ONE_PASS if a["kind"] == "telemetry"]
    assert telemetry == [
        {
            "kind": "telemetry",
            "severity": "warning",
            "step": 200,
            "epoch": None,
            "time": telemetry[0]["time"],
            "metric": None,
            "value": None,
            "message": "wandb is off",
        }
    ]


def test_a_trainer_alert_before_the_detection_wins(tmp_path: Path) -> None:
    loss = np.ones(100)
    loss[50:] = np.nan
    alert = {
        "event": "alert",
        "step": 505,
        "kind": "nan_inf",
        "severity": "critical",
        "message": "loss is NaN",
    }
    run = run_of(tmp_path, make_records(100, {"train_loss": loss}, events=[alert]))
    [only] = AlertEngine().update(run, now=run.last_time)
    assert (only.message, only.step, only.source) == ("loss is NaN", 505, "producer")


def test_alert_dict_has_exactly_the_design_shape(tmp_path: Path) -> None:
    grad = np.ones(200)
    grad[150] = 5000
    run = make_run(tmp_path, 200, {"grad_norm": grad})
    [alert] = AlertEngine().update(run, now=run.last_time)
    assert alert.to_dict() == {
        "kind": "exploding_gradients",
        "severity": "critical",
        "step": 1510,
        "epoch": 0,
        "time": alert.time,
        "metric": "grad_norm",
        "value": 5000.0,
        "message": "grad_norm 5.0e3 at step 1,510: 5,000x its median of the last 100 points; above the bound 1,000; "
        "clip gradients (torch.nn.utils.clip_grad_norm_(params, 1.0)) or lower the lr",
    }
    assert isinstance(alert.time, float)


def test_a_reread_run_starts_over_without_duplicates(tmp_path: Path) -> None:
    run = Run(tmp_path)
    engine = AlertEngine()
    feed(run, RECORDS)
    first = engine.update(run, now=run.last_time)
    assert engine.update(run, now=run.last_time) == []
    run.reset()
    feed(run, RECORDS)
    again = engine.update(run, now=run.last_time)
    assert _comparable([a.to_dict() for a in again]) == _comparable(ONE_PASS)
    assert engine.alerts_for(run) == again
    assert len(first) == len(again)


def test_runs_are_kept_apart(tmp_path: Path) -> None:
    bad = np.ones(50)
    bad[10] = np.nan
    good = make_run(tmp_path, 50, {"train_loss": 1.0}, name="good")
    broken = make_run(tmp_path, 50, {"train_loss": bad}, name="broken")
    engine = AlertEngine()
    engine.update(good, now=good.last_time)
    engine.update(broken, now=broken.last_time)
    assert engine.alerts_for(good) == []
    assert [a.kind for a in engine.alerts_for(broken)] == ["nan_inf"]
    assert engine.alerts == engine.alerts_for(broken)


@pytest.mark.parametrize("kind", ["exploding_gradients", "low_gpu_util", "loss_plateau", "producer"])
def test_a_disabled_detector_raises_nothing(kind: str) -> None:
    config = parse_alert_config({kind: {"enabled": False}})
    run = feed(Run(Path("x")), RECORDS)
    alerts = AlertEngine(config).update(run, now=run.last_time)
    if kind == "producer":
        assert alerts
        assert [a for a in alerts if a.source == "producer"] == []
    else:
        assert {a.kind for a in alerts if a.source == "detected"} >= {"nan_inf", "model_collapse"}
        assert [a for a in alerts if a.kind == kind and a.source == "detected"] == []


def test_thresholds_from_config_change_what_fires(tmp_path: Path) -> None:
    grad = np.ones(200)
    grad[100] = 40  # 40x the median: below the default ratio of 50
    run = make_run(tmp_path, 200, {"grad_norm": grad})
    assert AlertEngine().update(run, now=run.last_time) == []
    strict = parse_alert_config({"exploding_gradients": {"ratio": 20.0}})
    [alert] = AlertEngine(strict).update(run, now=run.last_time)
    assert (alert.kind, alert.severity, alert.step) == ("exploding_gradients", Severity.CRITICAL, 1010)


def test_default_config_is_the_documented_defaults() -> None:
    cfg = AlertConfig()
    assert cfg.exploding_gradients.abs_threshold == 1000
    assert cfg.vanishing_gradients.threshold == 0.001
    assert cfg.model_collapse.max_token_ratio == 0.7
    assert cfg.model_collapse.max_eos_ratio == 0.8
    assert cfg.diagnostics.silhouette == 0.5
