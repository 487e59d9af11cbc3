"""``termmon report``: runs with planted problems, written as real files and read through the CLI.

Each planted problem must be named in the Markdown and turn into advice; a healthy run must say IMPROVED
and raise no bad-sign advice. The PNGs must exist, be linked, and show something (pixel variance).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from termmon.analysis.diagnosis import Diagnosis, Verdict, diagnose
from termmon.cli import main
from termmon.loading import load_runs
from tests.runs import make_records, write_run

STEPS = 200
RNG_SEED = 4


def _healthy_metrics(rng: np.random.Generator) -> dict[str, Any]:
    noise = rng.normal(0.0, 0.02, STEPS)
    share = np.clip(50.0 + rng.normal(0.0, 4.0, STEPS), 0.0, 100.0)
    return {
        "train_loss": lambda s: 2.0 * np.exp(-s / 800.0) + 0.3 + noise,
        "train_accuracy": lambda s: 0.9 - 0.6 * np.exp(-s / 800.0),
        "lr": lambda s: 1e-3 * np.minimum(1.0, (s + 10) / 200.0),
        "grad_norm": lambda s: 2.0 + np.sin(s / 50.0),
        "gradients/encoder.layer1/norm": lambda s: 1.5 + 0.0 * s,
        "gradients/head/norm": lambda s: 0.5 + 0.0 * s,
        "param_updates/num_updated": 4,
        "param_updates/num_total": 4,
        "batch_stats/winner_0_pct": share,
        "batch_stats/winner_1_pct": 100.0 - share,
    }


def _write(tmp_path: Path, name: str, changes: Mapping[str, Any] | None = None) -> Path:
    """A termmon-logger run (metrics.jsonl) that is healthy except for ``changes``."""
    metrics = _healthy_metrics(np.random.default_rng(RNG_SEED))
    metrics.update(changes or {})
    records = make_records(
        STEPS,
        metrics,
        epoch_metrics={"train/loss": [1.8, 1.2, 0.8, 0.6], "test/loss": [1.9, 1.3, 0.9, 0.7]},
        run_name=name,
    )
    return write_run(tmp_path / name, records)


def _report(run_dir: Path, tmp_path: Path) -> tuple[str, Path]:
    output = tmp_path / "out" / f"{run_dir.name}.md"
    assert main(["report", str(run_dir), "--output", str(output)]) == 0
    return output.read_text(encoding="utf-8"), output


def _diagnosis(run_dir: Path) -> Diagnosis:
    (run,) = load_runs([str(run_dir)], progress=False)
    return diagnose(run)


def _advice_keys(run_dir: Path) -> set[str]:
    return {advice.key for advice in _diagnosis(run_dir).advice}


def _assert_png_shows_something(path: Path) -> None:
    import matplotlib.image

    assert path.is_file(), path
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(pixels[..., :3].var()) > 1e-3, f"{path.name} is blank"


def _write_debug_log(run_dir: Path, *, label_max: int, n_codes: int) -> Path:
    """Seed 004's debug logger, as its documentation describes the records (every 10 steps)."""
    rng = np.random.default_rng(RNG_SEED)
    events: list[dict[str, Any]] = [
        {"event_type": "fit_start", "step": 0, "data": {"trainable_params": 234, "total_params": 234}},
        {
            "event_type": "data_sanity_check",
            "step": 0,
            "data": {
                "label_min": 0,
                "label_max": label_max,
                "n_codes": n_codes,
                "labels_in_range": label_max < n_codes,
            },
        },
    ]
    step = 0
    for _epoch in range(3):
        events.append({"event_type": "epoch_start", "step": step, "data": {"lr": 2e-4, "weight_decay": 0.01}})
        for _ in range(20):
            step += 10
            loss = 6.8 * np.exp(-step / 400.0) + 1.0 + rng.normal(0.0, 0.02)
            events.append(
                {
                    "event_type": "training_step",
                    "step": step,
                    "data": {"loss": loss, "accuracy": 0.5 - loss / 20.0, "learning_rate": 2e-4},
                }
            )
            events.append(
                {
                    "event_type": "gradient_stats",
                    "step": step,
                    "data": {
                        "total_norm": 3.0,
                        "max_grad": 0.1,
                        "min_grad": 0.0,
                        "top_modules": [["decoder", 2.0]],
                    },
                }
            )
            if step % 50 == 0:
                events.append(
                    {
                        "event_type": "param_updates",
                        "step": step,
                        "data": {"num_updated": 234, "num_total": 234, "no_update_warning": False},
                    }
                )
    run_dir.mkdir(parents=True)
    (run_dir / "debug_log_1700000000.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return run_dir


def test_healthy_run_improves_and_raises_no_bad_signs(tmp_path: Path) -> None:
    run_dir = _write(tmp_path, "healthy")
    text, output = _report(run_dir, tmp_path)

    assert "(**IMPROVED**)" in text and "did not improve" not in text
    assert "No bad signs found." in text and "Bad signs:" not in text
    assert "Batch labels are balanced" in text
    assert "encoder.layer1" in text and "4/4" in text
    assert "LR starts small and ramps up (warmup)" in text
    assert _diagnosis(run_dir).advice == []
    for key in ("loss", "grad_norm", "lr"):
        png = output.parent / f"healthy_{key}.png"
        _assert_png_shows_something(png)
        assert f"]({png.name})" in text


def test_flat_loss_did_not_improve(tmp_path: Path) -> None:
    flat = 2.3 + np.random.default_rng(1).normal(0.0, 0.005, STEPS)
    run_dir = _write(tmp_path, "flat", {"train_loss": flat, "train_accuracy": 0.1})
    text, _ = _report(run_dir, tmp_path)

    diagnosis = _diagnosis(run_dir)
    assert diagnosis.improvement is not None and diagnosis.improvement.loss is not None
    assert diagnosis.improvement.loss.verdict is Verdict.FLAT
    assert "Loss (train\\_loss)" in text and "did not improve" in text
    assert "Check the learning-rate schedule" in text
    assert "not_improving" in _advice_keys(run_dir)


def test_rising_loss_did_not_improve(tmp_path: Path) -> None:
    run_dir = _write(tmp_path, "rising", {"train_loss": lambda s: 1.0 + s / 500.0})
    text, _ = _report(run_dir, tmp_path)
    assert "did not improve (got worse)" in text


def test_zero_gradients_are_counted_and_advised(tmp_path: Path) -> None:
    run_dir = _write(
        tmp_path,
        "zerograd",
        {"grad_norm": 0.0, "gradients/encoder.layer1/norm": 0.0, "gradients/head/norm": 0.0},
    )
    text, output = _report(run_dir, tmp_path)

    gradients = _diagnosis(run_dir).gradients
    assert gradients is not None and gradients.near_zero == STEPS
    assert gradients.silent_modules == ["encoder.layer1", "head"]
    assert f"Near zero (< 0.001): **{STEPS}** steps" in text
    assert "No gradient flow: check that the loss is connected to the parameters" in text
    assert "no_gradient_flow" in _advice_keys(run_dir)
    _assert_png_shows_something(output.parent / "zerograd_grad_norm.png")


def test_exploding_and_nonfinite_gradients(tmp_path: Path) -> None:
    norms = np.full(STEPS, 2.0)
    norms[150:160] = 5000.0
    norms[170] = np.nan
    run_dir = _write(tmp_path, "explode", {"grad_norm": norms})
    text, _ = _report(run_dir, tmp_path)

    assert "Exploding (> 1,000): **10** steps" in text and "**1 non-finite**" in text
    assert {"exploding_gradients", "nonfinite_gradients"} <= _advice_keys(run_dir)


def test_no_parameter_updates(tmp_path: Path) -> None:
    run_dir = _write(tmp_path, "frozen", {"param_updates/num_updated": 0})
    text, _ = _report(run_dir, tmp_path)

    assert f"**NO PARAMETER UPDATES** in {STEPS} measurements" in text
    assert "0/4" in text and "The optimizer might not be stepping" in text
    assert "no_param_updates" in _advice_keys(run_dir)


def test_label_bias_from_batch_label_shares(tmp_path: Path) -> None:
    share = 90.0 + np.random.default_rng(2).normal(0.0, 2.0, STEPS)
    run_dir = _write(
        tmp_path, "biased", {"batch_stats/winner_0_pct": share, "batch_stats/winner_1_pct": 100.0 - share}
    )
    text, _ = _report(run_dir, tmp_path)

    bias = _diagnosis(run_dir).data
    assert bias is not None and bias.bias is not None and bias.bias.dominant == 0
    assert 88.0 < bias.bias.dominant_pct < 92.0
    assert "**Label bias**: class 0 is 9" in text and "an even split is 50.0%" in text
    assert "label_bias" in _advice_keys(run_dir)


def test_seed_004_debug_log_with_out_of_range_labels(tmp_path: Path) -> None:
    run_dir = _write_debug_log(tmp_path / "seed4", label_max=1200, n_codes=1024)
    text, output = _report(run_dir, tmp_path)

    assert "| 0 | 0 | 1,200 | 1,024 | **OUT OF RANGE** |" in text
    assert "Check n_codes against the actual codec vocabulary" in text
    assert "label\\_out\\_of\\_range" in text  # the alert engine's alert is listed too
    assert "(**IMPROVED**)" in text  # seed 004's loss falls in this log
    assert "| 0 | 20 |" in text and "| 2 | 20 |" in text  # per-epoch rows from epoch_start
    assert "labels_out_of_range" in _advice_keys(run_dir)
    _assert_png_shows_something(output.parent / "seed4_loss.png")


def test_seed_004_debug_log_in_range_is_clean(tmp_path: Path) -> None:
    run_dir = _write_debug_log(tmp_path / "seed4ok", label_max=1000, n_codes=1024)
    text, _ = _report(run_dir, tmp_path)
    assert "Labels in range." in text and _diagnosis(run_dir).advice == []


def test_missing_sections_say_what_to_turn_on(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "bare", make_records(30, {"train_loss": lambda s: 1.0 / s}))
    text, output = _report(run_dir, tmp_path)

    assert "No gradient statistics logged: `Telemetry(track_gradients=True)`" in text
    assert "No parameter-update counts logged" in text and "No label checks logged" in text
    assert (output.parent / "bare_loss.png").is_file()
    assert not (output.parent / "bare_grad_norm.png").exists()


def test_terminal_output_treats_disk_strings_as_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = "gradients/[bold red]x[/bold red]|\x1b[2J/norm"
    run_dir = _write(tmp_path, "markup", {evil: 1.0})
    files_before = set(tmp_path.rglob("*"))

    assert main(["report", str(run_dir)]) == 0
    shown = capsys.readouterr().out
    assert "[bold red]x[/bold red]|" in shown  # literally, not as markup, and the | did not split the cell
    assert "\x1b" not in shown and "\\x1b[2J" in shown
    assert "IMPROVED" in shown and "Gradient analysis" in shown
    assert set(tmp_path.rglob("*")) == files_before  # no PNGs without --output


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err

    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 1  # exists, holds no run: as every command
    assert "no runs under" in capsys.readouterr().err

    _write(tmp_path / "many", "a")
    _write(tmp_path / "many", "b")
    assert main(["report", str(tmp_path / "many")]) == 2
    err = capsys.readouterr().err
    assert (
        "holds 2 runs" in err and str(tmp_path / "many" / "a") in err and str(tmp_path / "many" / "b") in err
    )
    assert err.count("\n") == 1 and "Traceback" not in err


def test_run_file_stands_for_its_directory(tmp_path: Path) -> None:
    run_dir = _write(tmp_path, "byfile")
    output = tmp_path / "byfile.md"
    assert main(["report", str(run_dir / "metrics.jsonl"), "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8").startswith("# termmon report: byfile")


def test_run_without_records_is_not_called_healthy(tmp_path: Path) -> None:
    run_dir = tmp_path / "fresh"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("")
    text, _ = _report(run_dir, tmp_path)
    assert "The run has no records yet" in text and "No bad signs found" not in text.split("##")[0]


def test_lr_climbing_to_the_end_is_not_a_warmup(tmp_path: Path) -> None:
    """A rise that never levels off (1.2e-4 to 13.6 on a diverging run) is not the good sign."""
    climbing = _write(
        tmp_path, "climbing", {"lr": lambda s: 1.2e-4 * np.exp(s * np.log(13.6 / 1.2e-4) / STEPS)}
    )
    text, _ = _report(climbing, tmp_path)
    assert "warmup" not in text
    diagnosis = _diagnosis(climbing)
    assert diagnosis.progression is not None and not diagnosis.progression.lr_ramps_up
    # A rise that reaches its peak and stays there is one.
    plateau = _write(tmp_path, "plateau", {"lr": lambda s: 1e-3 * np.minimum(1.0, (s + 1) / 40.0)})
    assert _diagnosis(plateau).progression.lr_ramps_up  # type: ignore[union-attr]


def test_png_step_axis_reads_like_the_terminal_not_an_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1M-step run's x axis says 200k ... 1M, as the TUI does, not 0.2 ... 1.0 with "1e6" in the corner."""
    from matplotlib.figure import Figure

    ticks: dict[str, list[str]] = {}
    save = Figure.savefig

    def spy(fig: Figure, fname: Any, *args: Any, **kwargs: Any) -> None:
        fig.canvas.draw()  # tick labels and the offset text are set when the figure is drawn
        for ax in fig.axes:
            ticks[f"{Path(str(fname)).name}:{len(ticks)}"] = [
                *(t.get_text() for t in ax.get_xticklabels()),
                ax.xaxis.get_offset_text().get_text(),
            ]
        save(fig, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    steps = np.arange(5_000, 1_000_001, 5_000)
    records = make_records(steps, {"train_loss": lambda s: 2.0 * np.exp(-s / 3e5) + 0.1, "lr": 1e-3})
    _report(write_run(tmp_path / "long", records), tmp_path)
    loss = next(labels for name, labels in ticks.items() if "loss" in name)
    assert "1M" in loss and "200k" in loss
    assert not any("e6" in label or label == "1.0" for label in loss)


def test_png_legend_stays_clear_of_the_nan_marks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A diverging run's NaN/Inf marks run along the top edge from where it diverged: the legend, which
    would go to the empty top right, must sit below them."""
    from matplotlib.figure import Figure

    tops: dict[str, float] = {}
    save = Figure.savefig

    def spy(fig: Figure, fname: Any, *args: Any, **kwargs: Any) -> None:
        fig.canvas.draw()
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is not None:
                box = legend.get_window_extent().transformed(ax.transAxes.inverted())
                tops[f"{Path(str(fname)).name}:{len(tops)}"] = float(box.y1)
        save(fig, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    diverging = _write(
        tmp_path,
        "diverging",
        {
            "train_loss": lambda s: np.where(s < 120, 2.0 * np.exp(-s / 800.0), np.nan),
            "grad_norm": lambda s: np.where(s < 120, 2.0 + np.sin(s / 50.0), np.inf),
        },
    )
    _report(diverging, tmp_path)
    marked = {name: top for name, top in tops.items() if "loss" in name or "grad_norm" in name}
    assert marked and all(top < 0.95 for top in marked.values()), tops


def test_progression_shows_accuracy_only_when_logged_and_big_measurements_compactly(tmp_path: Path) -> None:
    healthy, _ = _report(_write(tmp_path, "with_accuracy"), tmp_path)
    assert "accuracy first → last" in healthy
    # A run without accuracy gets no columns of dashes; a whole-valued gradient norm of 5.9e9 is a
    # measurement, not a count with thousands separators.
    huge = np.where(np.arange(STEPS) == STEPS - 1, 5_939_499_520.0, 2.0)
    records = make_records(
        STEPS,
        {"train_loss": lambda s: 2.0 * np.exp(-s / 800.0) + 0.3, "lr": 1e-3, "grad_norm": huge},
        epoch_metrics={"train/loss": [1.8, 1.2, 0.8, 0.6]},
        run_name="loss_only",
    )
    text, _ = _report(write_run(tmp_path / "loss_only", records), tmp_path)
    assert "## Training progression" in text and "first → last" in text
    assert "accuracy" not in text.split("## Training progression")[1].split("##")[0]
    assert "5.9e9" in text and "5,939,499,520" not in text
