"""Each detector on a synthetic run that fails in a known way: it fires at the right place, once per episode,
with a message that says what happened."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from termmon.analysis.alerts import Alert, AlertConfig, AlertEngine, Severity
from tests.runs import START_TIME, feed, make_records, make_run, run_of

LOG_EVERY = 10


def alerts_of(run_alerts: list[Alert], kind: str) -> list[Alert]:
    return [a for a in run_alerts if a.kind == kind]


def evaluate(tmp_path: Path, steps: int, metrics: dict, **layout: object) -> list[Alert]:
    run = make_run(tmp_path, steps, metrics, log_every=LOG_EVERY, **layout)
    return AlertEngine().update(run, now=run.last_time)


def flat(n: int, value: float = 1.0, rel: float = 0.1, seed: int = 0) -> np.ndarray:
    return value * (1 + rel * np.random.default_rng(seed).standard_normal(n))


def step_of(point: int) -> int:
    """The step of the point at index ``point`` in make_records' layout."""
    return (point + 1) * LOG_EVERY


# --- nan_inf ---------------------------------------------------------------------------------------------
def test_diverged_run_is_one_nan_alert_naming_the_metric(tmp_path: Path) -> None:
    loss = flat(1000, 2.0)
    loss[600:] = np.nan
    grad = flat(1000)
    grad[600:] = np.inf
    alerts = evaluate(tmp_path, 1000, {"train_loss": loss, "grad_norm": grad})
    [alert] = alerts_of(alerts, "nan_inf")
    assert (alert.severity, alert.step, alert.metric) == (Severity.CRITICAL, step_of(600), "train_loss")
    assert np.isnan(alert.value or 0.0)  # the loss, computed before the gradients
    assert alert.message.startswith("train_loss is NaN at step 6,010 (also non-finite: grad_norm)")


def test_each_nan_episode_is_one_alert(tmp_path: Path) -> None:
    loss = flat(1000, 2.0)
    loss[[300, 302, 305]] = np.nan  # one episode: fewer than rearm_points finite points between
    loss[800] = -np.inf
    alerts = alerts_of(evaluate(tmp_path, 1000, {"loss/total": loss}), "nan_inf")
    assert [a.step for a in alerts] == [step_of(300), step_of(800)]
    assert [a.message.split(";")[0] for a in alerts] == [
        "loss/total is NaN at step 3,010",
        "loss/total is -Inf at step 8,010",
    ]


def test_producer_flag_and_epoch_losses_are_watched(tmp_path: Path) -> None:
    flag = np.zeros(400)
    flag[200] = 1
    test_loss = np.linspace(1, 0.5, 10)
    test_loss[7] = np.nan
    alerts = alerts_of(
        evaluate(tmp_path, 400, {"nan_inf_detected": flag}, epoch_metrics={"test/loss": test_loss}), "nan_inf"
    )
    assert [(a.step, a.epoch, a.metric) for a in alerts] == [
        (step_of(200), 5, "nan_inf_detected"),
        (3200, 7, "test/loss"),
    ]
    assert alerts[0].message.startswith("the trainer flagged NaN/Inf values (nan_inf_detected) at step 2,010")


# --- gradients --------------------------------------------------------------------------------------------
def test_a_huge_explosion_factor_reads_as_a_power_of_ten(tmp_path: Path) -> None:
    grad = np.full(100, 0.5)
    grad[60] = 5.1e12
    [alert] = alerts_of(evaluate(tmp_path, 100, {"grad_norm": grad}), "exploding_gradients")
    assert "1.0e13x its median" in alert.message and "10,200,000,000,000x" not in alert.message
    assert alert.message.endswith(
        "clip gradients (torch.nn.utils.clip_grad_norm_(params, 1.0)) or lower the lr"
    )


def test_gradient_spike_is_compared_with_its_recent_median(tmp_path: Path) -> None:
    grad = np.full(300, 3.4)
    grad[165] = 4100.0
    grad[250:260] = 500.0  # below the bound, but ~150x the median: an episode of its own
    [first, second] = alerts_of(evaluate(tmp_path, 300, {"grad_norm": grad}), "exploding_gradients")
    assert (first.severity, first.step, first.value) == (Severity.CRITICAL, 1660, 4100.0)
    assert first.message.startswith(
        "grad_norm 4.1e3 at step 1,660: 1,206x its median of the last 100 points; above the bound 1,000; "
        "clip gradients"
    )
    assert second.step == step_of(250)
    assert "147x its median" in second.message


def test_gradient_norm_above_the_bound_from_the_start(tmp_path: Path) -> None:
    alerts = evaluate(tmp_path, 50, {"grad_norm": 2000.0})
    assert [a.step for a in alerts_of(alerts, "exploding_gradients")] == [LOG_EVERY]


def test_vanishing_gradients_need_consecutive_points(tmp_path: Path) -> None:
    grad = flat(600)
    grad[100] = 1e-5  # a single tiny point is not vanishing
    grad[300:] = 2e-5
    [alert] = alerts_of(evaluate(tmp_path, 600, {"grad_norm": grad}), "vanishing_gradients")
    assert (alert.severity, alert.step) == (Severity.WARNING, step_of(304))
    assert alert.message.startswith("grad_norm 2.0e-5 at step 3,050: below 0.001 for 5 points in a row")


def test_no_param_updates_from_counts_or_the_producer_warning(tmp_path: Path) -> None:
    records = make_records(
        40,
        {"train_loss": 1.0},
        log_every=LOG_EVERY,
        events=[
            {"event": "step", "step": 100, "param_updates/num_updated": 12, "param_updates/num_total": 12},
            {"event": "step", "step": 200, "param_updates/num_updated": 0, "param_updates/num_total": 12},
            {"event": "step", "step": 250, "param_updates/num_updated": 0, "param_updates/num_total": 12},
            {
                "event": "step",
                "step": 300,
                "param_updates/num_updated": 12,
                "param_updates/no_update_warning": 0,
            },
            {"event": "step", "step": 350, "param_updates/no_update_warning": 1},
        ],
    )
    run = run_of(tmp_path, records)
    alerts = alerts_of(AlertEngine().update(run, now=run.last_time), "no_param_updates")
    assert [a.step for a in alerts] == [200, 350]
    assert alerts[0].message.startswith(
        "no parameters changed at step 200: param_updates/num_updated is 0 of 12"
    )


# --- loss -------------------------------------------------------------------------------------------------
def test_loss_plateau_fires_once_after_the_loss_stops_improving(tmp_path: Path) -> None:
    n, plateau = 6000, 1500
    s = np.arange(n)
    loss = (0.8 + 2 * np.exp(-np.minimum(s, plateau) / 200)) * flat(n, 1.0, 0.05, seed=3)
    [alert] = alerts_of(evaluate(tmp_path, n, {"train_loss": loss}), "loss_plateau")
    cfg = AlertConfig().loss_plateau
    assert alert.severity == Severity.WARNING
    assert step_of(plateau) <= alert.step <= step_of(plateau + 2 * cfg.max_window + cfg.consecutive)
    assert alert.message.startswith(f"train_loss plateaued at step {alert.step:,}: mean 0.8")


def test_a_new_plateau_after_the_loss_improves_again_is_a_new_episode(tmp_path: Path) -> None:
    n = 9000
    s = np.arange(n)
    level = np.where(s < 4000, 1.0 + 2 * np.exp(-s / 200), 0.6 + 0.4 * np.exp(-(s - 4000) / 200))
    loss = level * flat(n, 1.0, 0.05, seed=5)
    alerts = alerts_of(evaluate(tmp_path, n, {"train_loss": loss}), "loss_plateau")
    assert len(alerts) == 2
    assert step_of(1000) <= alerts[0].step < step_of(4000) < alerts[1].step
    assert [round(a.value or 0, 1) for a in alerts] == [1.0, 0.6]


def test_overfitting_needs_rising_eval_while_train_falls(tmp_path: Path) -> None:
    e = np.arange(25)
    train = 2 * np.exp(-e / 5) + 0.1
    test = np.where(e <= 12, 1.5 * np.exp(-e / 6) + 0.4, 0.0)
    test[13:] = test[12] * 1.04 ** np.arange(1, 13)
    alerts = evaluate(tmp_path, 250, {}, epoch_metrics={"train/loss": train, "test/loss": test})
    [alert] = alerts_of(alerts, "overfitting")
    assert (alert.severity, alert.epoch, alert.metric) == (Severity.WARNING, 15, "test/loss")
    assert alert.message.startswith(
        "test/loss rose 3 evaluations in a row to 0.6783 at step 1,600 (best 0.603)"
    )


def test_rising_eval_with_rising_train_is_not_overfitting(tmp_path: Path) -> None:
    e = np.arange(20)
    rising = 0.5 * 1.05**e
    alerts = evaluate(tmp_path, 200, {}, epoch_metrics={"train/loss": rising, "test/loss": rising + 0.1})
    assert alerts_of(alerts, "overfitting") == []


# --- system -----------------------------------------------------------------------------------------------
def test_low_gpu_util_is_sustained_low_util(tmp_path: Path) -> None:
    util = np.full(1000, 92.0)
    util[100:110] = 5  # a short dip: evaluation
    util[300:400] = 12
    util[700:] = 8
    alerts = alerts_of(evaluate(tmp_path, 1000, {"gpu_util": util}), "low_gpu_util")
    assert [a.step for a in alerts] == [step_of(319), step_of(719)]
    assert alerts[0].message.startswith("gpu_util 12% at step 3,200: below 30% for 20 points in a row")


def test_stalled_once_per_stall(tmp_path: Path) -> None:
    records = make_records(100, {"train_loss": 1.0}, log_every=LOG_EVERY, end=None)
    run = run_of(tmp_path, records[:60])
    engine = AlertEngine()
    last = run.last_time
    assert engine.update(run, now=last + 60) == []
    [alert] = engine.update(run, now=last + 600)
    assert (alert.kind, alert.severity, alert.step, alert.time) == (
        "stalled",
        Severity.WARNING,
        590,
        last + 600,
    )
    assert alert.message.startswith(
        "no new records for 10m 00s (records usually every 1.0s); last at step 590"
    )
    assert engine.update(run, now=last + 6000) == []
    feed(run, records[60:])
    assert engine.update(run, now=run.last_time + 1) == []
    assert [a.step for a in engine.update(run, now=run.last_time + 300)] == [1000]


def test_finished_run_never_stalls(tmp_path: Path) -> None:
    run = make_run(tmp_path, 50, {"train_loss": 1.0})
    assert AlertEngine().update(run, now=START_TIME + 1e6) == []


# --- collapse and data --------------------------------------------------------------------------------------
def test_model_collapse_from_token_statistics(tmp_path: Path) -> None:
    ratio = np.full(100, 0.2)
    ratio[60:80] = 0.92
    unique = np.full(100, 40.0)
    unique[90:] = 4
    metrics = {"collapse/most_common_ratio": ratio, "tokens/unique_tokens": unique, "tokens/total_tokens": 64}
    alerts = alerts_of(evaluate(tmp_path, 100, metrics), "model_collapse")
    assert [(a.step, a.severity) for a in alerts] == [
        (step_of(60), Severity.CRITICAL),
        (step_of(90), Severity.CRITICAL),
    ]
    assert alerts[0].message.startswith(
        "model collapse at step 610: the most common token is 92% of outputs (> 70%)"
    )
    assert alerts[1].message.startswith(
        "model collapse at step 910: only 4 unique tokens in 64 (< 10 in 50+)"
    )


def test_model_collapse_from_the_producer_verdict_and_eos(tmp_path: Path) -> None:
    collapsed = np.zeros(50)
    collapsed[20:] = 1
    eos = np.where(np.arange(50) >= 20, 0.85, 0.1)
    alerts = alerts_of(
        evaluate(tmp_path, 50, {"collapse/is_collapsed": collapsed, "collapse/eos_ratio": eos}),
        "model_collapse",
    )
    [alert] = alerts
    assert alert.message.startswith(
        "model collapse at step 210: the trainer reports collapse (collapse/is_collapsed); EOS is 85% of outputs (> 80%)"
    )


def test_labels_out_of_range(tmp_path: Path) -> None:
    sanity = {
        "event": "step",
        "step": 0,
        "data_sanity_check/labels_in_range": 0,
        "data_sanity_check/label_min": 0,
        "data_sanity_check/label_max": 1030,
        "data_sanity_check/n_codes": 1024,
    }
    run = run_of(tmp_path, make_records(20, {"train_loss": 1.0}, events=[sanity]))
    [alert] = alerts_of(AlertEngine().update(run, now=run.last_time), "label_out_of_range")
    assert (alert.severity, alert.step) == (Severity.CRITICAL, 0)
    assert alert.message.startswith("labels out of range at step 0: labels span 0..1,030, n_codes is 1,024")


def test_labels_in_range_raise_nothing(tmp_path: Path) -> None:
    sanity = {
        "event": "step",
        "step": 0,
        "data_sanity_check/labels_in_range": 1,
        "data_sanity_check/label_max": 1000,
        "data_sanity_check/n_codes": 1024,
    }
    run = run_of(tmp_path, make_records(20, {"train_loss": 1.0}, events=[sanity]))
    assert AlertEngine().update(run, now=run.last_time) == []
