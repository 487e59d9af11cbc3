"""Hugging Face Trainer output dirs (tests/data/hf, made by scripts/make_format_fixtures.py): the
event files under runs/ are the run; trainer_state.json alone is one too; checkpoints never are."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from termmon.ingest.discovery import find_runs
from termmon.ingest.source import RunSource
from tests.format_helpers import DATA, alert_kinds, only_run, read_run, summary

HF = DATA / "hf"


def state_only(tmp_path: Path, name: str) -> Path:
    """An output dir as a Trainer writes it with report_to='none': no runs/ event files."""
    out = tmp_path / name
    shutil.copytree(HF / name, out, ignore=shutil.ignore_patterns("runs"))
    return out


def test_an_output_dir_is_one_run_read_from_its_event_files() -> None:
    run = only_run(HF / "healthy")
    assert run.format == "tfevents" and run.dir.parent.name == "runs"
    records = read_run(HF / "healthy")
    # HF's two events files: training, then the final evaluate() in the second; eval shares the step.
    loss_steps = [r["step"] for r in records if "train/loss" in r]
    assert loss_steps == [5, 10, 15, 20, 25, 30]
    # HF writes TrainingArguments and the model config as JSON text summaries: the run's config.
    config = [r for r in records if r["event"] == "start"][-1]["config"]
    assert config["args"]["learning_rate"] == 5e-3 and config["model_config"]["n_layer"] == 1
    # train/epoch keeps its name and also gives the run its (fractional) epoch axis.
    assert [r["epoch"] for r in records if "train/loss" in r] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    eval_steps = [r["step"] for r in records if "eval/loss" in r]
    assert eval_steps[:3] == [10, 20, 30] and len(eval_steps) == 4


def test_trainer_state_alone_is_one_run_with_fractional_epochs(tmp_path: Path) -> None:
    out = state_only(tmp_path, "healthy")
    run = only_run(out)
    assert run.format == "hf_trainer" and run.dir == out  # checkpoint-30/ is not a second run
    records = read_run(out)
    assert records[0]["event"] == "start" and records[0]["config"]["logging_steps"] == 5
    train = [r for r in records if "loss" in r]
    assert [r["step"] for r in train] == [5, 10, 15, 20, 25, 30]
    assert train[0]["epoch"] == 0.5
    evals = [r for r in records if "eval_loss" in r]
    assert [r["step"] for r in evals] == [10, 20, 30, 30]  # sharing the training step
    assert any("train_runtime" in r for r in records)


def test_trainer_state_beside_event_files_is_one_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(HF / "healthy", out)
    for events in (out / "runs").glob("*/events.out.tfevents.*"):
        shutil.move(events, out / events.name)  # logging_dir=output_dir
    shutil.rmtree(out / "runs")
    run = only_run(out)
    assert run.format == "tfevents" and run.dir == out


def test_bare_nan_reads_and_hf_nan_filter_still_raises(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = state_only(tmp_path, "diverged")
    records = read_run(out)
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[1:] == [0.0] * (len(losses) - 1)  # logging_nan_inf_filter hides the NaN in loss
    code, data, _ = summary([out], capsys)
    assert code == 0 and "nan_inf" in alert_kinds(data["runs"][0])
    messages = " ".join(a["message"] for a in data["runs"][0]["alerts"])
    assert "grad_norm" in messages or "eval_loss" in messages


def test_the_diverged_event_files_raise_nan_inf(capsys: pytest.CaptureFixture[str]) -> None:
    code, data, _ = summary([HF / "diverged"], capsys)
    assert code == 0 and len(data["runs"]) == 1 and "nan_inf" in alert_kinds(data["runs"][0])


def test_a_damaged_trainer_state_keeps_the_last_good_and_says_so(tmp_path: Path) -> None:
    out = state_only(tmp_path, "healthy")
    source = RunSource(only_run(out))
    good = source.read_objects()
    assert good.reset and len(good.objects) > 5
    state = out / "trainer_state.json"
    state.write_bytes(state.read_bytes()[:300])  # a rewrite that stopped half way
    bad = source.read_objects()
    assert not bad.reset and bad.objects == []
    assert bad.error is not None and str(state) in bad.error and "not valid JSON" in bad.error
    source.close()


def test_checkpoint_copies_are_never_runs() -> None:
    names = {r.path.relative_to(HF).as_posix() for r in find_runs(HF)}
    assert names == {p.relative_to(HF).as_posix() for p in HF.glob("*/runs/*")}


def test_a_run_in_progress_is_read_from_its_latest_checkpoint(tmp_path: Path) -> None:
    out = state_only(tmp_path, "healthy")
    final = (out / "trainer_state.json").read_bytes()
    (out / "trainer_state.json").unlink()  # training not finished: only checkpoint-30/ has a state
    run = only_run(out)
    assert run.format == "hf_trainer" and run.dir == out
    source = RunSource(run)
    first = source.read_objects()
    assert first.reset and [r["step"] for r in first.objects if "loss" in r] == [5, 10, 15, 20, 25, 30]
    assert not any("train_runtime" in r for r in first.objects)  # the final entry comes at the end
    (out / "trainer_state.json").write_bytes(final)
    update = source.read_objects()
    assert update.reset and any("train_runtime" in r for r in update.objects)
    source.close()
