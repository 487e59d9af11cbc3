"""Telemetry configured from the seeds' config sections, and seed 003's generation-health helpers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from telemetry_helpers import TinyTask, events

from termmon.telemetry import Telemetry, TelemetryConfig, collapse_metrics, loss_breakdown, token_stats

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


def test_a_yaml_telemetry_section_with_seed_option_names(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        f"lr: 0.01\n"
        f"telemetry:\n  enabled: true\n  log_dir: {tmp_path / 'logs'}\n  run_name: y\n"
        f"  collect_every_n: 4\n  track_per_layer_stats: false\n  holdout_size: 8\n"
        f"training:\n  enable_diagnostics: true\n  diagnostic_sample_size: 2000\n"
    )
    settings = TelemetryConfig.from_file(cfg)
    assert (settings.log_every, settings.holdout_size, settings.diagnostic_sample_size) == (4, 8, 2000)
    assert settings.enable_diagnostics and not settings.track_per_layer_stats
    task = TinyTask()
    with Telemetry.from_config(cfg) as tm:
        tm.watch(task.model, task.optimizer)
        for _ in range(8):
            tm.step(loss=task.train_step())
            task.zero_grad()
    run = tmp_path / "logs" / "y"
    assert [r["step"] for r in events(run, "step")] == [4, 8]
    assert events(run, "start")[0]["config"]["lr"] == 0.01
    assert not (run / "telemetry" / "per_layer_stats.csv").exists()


def test_a_json_section_can_switch_telemetry_off_and_unknown_keys_only_warn(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"telemetry": {"enabled": False, "log_dir": str(tmp_path), "shiny": 1}}))
    with pytest.warns(UserWarning, match="shiny"):
        settings = TelemetryConfig.from_file(cfg)
    assert settings.enabled is False
    with pytest.raises(ValueError, match="log_every"):
        TelemetryConfig.from_dict({"log_every": 0})


def test_diagnostics_enabled_by_config_land_in_results_json(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(40, 20), torch.nn.ReLU(), torch.nn.Linear(20, 40))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(32, 40)
    with Telemetry(tmp_path, "diag", log_every=5, settings={"enable_diagnostics": True}) as tm:
        tm.watch(model, opt)
        for _ in range(5):
            loss = torch.nn.functional.mse_loss(model(x), x)
            loss.backward()
            opt.step()
            tm.step(loss=loss)
            opt.zero_grad()
        tm.epoch(0, train={"loss": loss})
    history = json.loads((tmp_path / "diag" / "results.json").read_text())["training_history"]
    assert history[0]["diagnostics"]["n_pairs_analyzed"] == 800
    assert "diagnostics/n_clusters_dbscan" in events(tmp_path / "diag", "epoch")[0]


def test_collapse_metrics_flag_a_model_that_repeats_one_token() -> None:
    healthy = collapse_metrics(torch.arange(60).reshape(3, 20), eos_id=0, pad_id=None)
    assert healthy["collapse/is_collapsed"] is False and healthy["collapse/unique_tokens"] == 60
    collapsed = collapse_metrics(
        [[7, 7, 7, 2, 0], [7, 7, 7, 2, 0]], eos_id=0, pad_id=0, decode=lambda t: f"tok{t}"
    )
    assert collapsed["collapse/is_collapsed"] is True
    assert set(collapsed["collapse/collapse_reason"].split(",")) == {
        "single_token_dominance",
        "identical_sequences",
    }
    assert (
        collapsed["collapse/most_common_token_text"] == "tok7"
        and collapsed["collapse/most_common_ratio"] == 0.75
    )


def test_token_stats_and_loss_breakdown_log_through_step(tmp_path: Path) -> None:
    ids = torch.tensor([[5, 6, 6, 2, 0], [5, 7, 2, 0, 0]])
    answer = torch.tensor([[0, 1, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=torch.bool)
    tokens = token_stats(ids, vocab_size=10, eos_id=2, pad_id=0, answer_mask=answer)
    assert tokens["tokens/pad_ratio"] == 0.3 and tokens["tokens/eos_count"] == 2
    assert tokens["tokens/answer_length"] == 2.5 and tokens["tokens/unique_token_ratio"] == 0.4
    losses = torch.tensor([[4.0, 1.0, 1.0], [2.0, 1.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    breakdown = loss_breakdown(losses, mask)
    assert breakdown["loss/first_token"] == 3.0 and breakdown["loss/later_tokens"] == 1.0
    assert breakdown["loss/first_vs_later_ratio"] == 3.0 and math.isclose(
        breakdown["loss/total"], 1.8, rel_tol=1e-6
    )
    with Telemetry(tmp_path, "gen", log_every=1) as tm:
        tm.step(loss=torch.tensor(1.0), **breakdown, **tokens)
    step = events(tmp_path / "gen", "step")[0]
    assert step["train_loss"] == 1.0 and step["loss/first_token"] == 3.0 and step["tokens/eos_count"] == 2
