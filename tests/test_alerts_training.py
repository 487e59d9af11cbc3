"""Real tiny trainings with real bugs, logged through ``Telemetry`` at its defaults: termmon names each bug
with the right kind near the onset the training itself sets, and stays quiet on healthy runs that a naive
detector would flag (slow SGD, a warm-up spike, cosine restarts, batch size 2, a plateau then a drop)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import torch

from termmon import Telemetry
from termmon.analysis.alerts import AlertEngine, Severity
from termmon.loading import load_runs
from termmon.model.run import Run
from tests.trainings import BUGS, HEALTHY, Scenario, mlp

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run(path: Path) -> Run:
    return load_runs([str(path)], progress=False)[0]


@pytest.mark.parametrize("scenario", BUGS, ids=lambda s: s.name)
def test_a_bug_is_named_near_its_onset(tmp_path: Path, scenario: Scenario) -> None:
    outcome = scenario.train(tmp_path)
    assert outcome.onset is not None
    run = _run(outcome.run_dir)
    alerts = AlertEngine().update(run, now=run.last_time + 1)
    named = [a for a in alerts if a.kind == scenario.kind and a.severity.rank >= Severity.WARNING.rank]
    assert named, [(a.kind, a.step, a.message) for a in alerts]
    first = named[0]
    assert first.step is not None
    assert outcome.onset <= first.step <= outcome.onset + scenario.allowed_delay(outcome.steps), first.message


@pytest.mark.parametrize("scenario", HEALTHY, ids=lambda s: s.name)
def test_a_healthy_training_raises_nothing_serious(tmp_path: Path, scenario: Scenario) -> None:
    run = _run(scenario.train(tmp_path).run_dir)
    alerts = AlertEngine().update(run, now=run.last_time + 1)
    assert [a.message for a in alerts if a.severity.rank >= Severity.WARNING.rank] == []


def _messages(scenario: str, tmp_path: Path) -> dict[str, str]:
    outcome = next(s for s in BUGS if s.name == scenario).train(tmp_path)
    run = _run(outcome.run_dir)
    return {a.kind: a.message for a in reversed(AlertEngine().update(run, now=run.last_time + 1))}


def test_messages_say_what_where_and_what_to_try(tmp_path: Path) -> None:
    forgot = _messages("forgot_step", tmp_path)["no_param_updates"]
    assert "gradients present" in forgot and "optimizer.step() was not called" in forgot
    assert "lr is 0" in _messages("lr_zero", tmp_path)["no_param_updates"]
    vanishing = _messages("dead_relu", tmp_path)["vanishing_gradients"]
    assert "0.weight" in vanishing and "init" in vanishing
    exploding = _messages("exploding", tmp_path)["exploding_gradients"]
    assert "clip gradients" in exploding and "x its median" in exploding
    nan = _messages("nan_input", tmp_path)["nan_inf"]
    assert nan.startswith("train_loss is NaN at step 310") and "usual causes" in nan
    collapsed = _messages("collapse", tmp_path)
    assert "logged collapse/sample: '0 0 0" in collapsed["model_collapse"]
    # its loss reached ~1e-4 before the bug: tiny gradients there are convergence, not vanishing
    assert "vanishing_gradients" not in collapsed
    never = _messages("shuffled_labels", tmp_path)["loss_plateau"]
    assert "no progress since the start" in never and "labels" in never and "data pipeline" in never


def test_samples_per_sec_at_defaults_from_the_model_input(tmp_path: Path) -> None:
    model = mlp(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with Telemetry(log_dir=tmp_path, run_name="throughput") as tm:
        tm.watch(model, optimizer)
        for _ in range(20):
            loss = model(torch.randn(16, 20)).square().mean()
            loss.backward()
            optimizer.step()
            tm.step(loss=loss)
            optimizer.zero_grad()
    run = _run(tmp_path / "throughput")
    stats = run.stats("samples_per_sec")
    assert stats is not None and stats.count == 2 and stats.min > 0


def test_a_hang_at_a_fast_cadence_is_flagged_while_it_hangs(tmp_path: Path) -> None:
    """Records every ~10 ms, then the trainer blocks: stalled long before 90 s, while the run hangs."""
    release = threading.Event()
    model = mlp(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    tm = Telemetry(log_dir=tmp_path, run_name="hang", log_every=1)
    tm.watch(model, optimizer)
    try:
        for _ in range(200):
            loss = model(torch.randn(8, 20)).square().mean()
            loss.backward()
            optimizer.step()
            tm.step(loss=loss)
            optimizer.zero_grad()
            release.wait(0.01)  # a 10 ms step
        run = _run(tmp_path / "hang")
        last = run.last_activity
        engine = AlertEngine()
        assert engine.update(run, now=last + 5) == []  # 500 usual intervals, but under the floor
        [stalled] = engine.update(run, now=last + 61)  # still hanging: 61 s of a 90 s hang
        assert stalled.kind == "stalled"
        assert re.search(r"records usually every \d+ms", stalled.message), stalled.message
    finally:
        tm.close()


def _report(scenario: str, tmp_path: Path) -> str:
    from termmon.cli import main

    outcome = next(s for s in BUGS if s.name == scenario).train(tmp_path)
    output = tmp_path / f"{scenario}.md"
    assert main(["report", str(outcome.run_dir), "--output", str(output)]) == 0
    return output.read_text(encoding="utf-8")


def test_report_follows_the_same_logic(tmp_path: Path) -> None:
    forgot = _report("forgot_step", tmp_path)
    assert "optimizer.step() was not called" in forgot and "tm.watch(model, optimizer)" not in forgot
    vanishing = _report("deep_sigmoid", tmp_path)
    assert "Initialisation" in vanishing and "detached" not in vanishing
    never = _report("shuffled_labels", tmp_path)
    assert "Check the labels" in never and "data pipeline" in never
    for text in (forgot, vanishing, never):
        good = text.split("Good signs:")[-1]
        assert "train_loss decreasing" not in good and "train\\_loss decreasing" not in good
