"""profile-batch on a real training function in real worker processes, through the CLI and the API."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

from termmon.cli import main
from termmon.errors import UsageError
from termmon.tools.profile_batch import ProfileResult, profile_batch_sizes

pytestmark = [pytest.mark.torch, pytest.mark.slow]

# 4,096 samples: batch size 4 takes 1,024 optimizer steps per epoch, 256 takes 16, so 256 is faster by far
# once the one-off set-up (a second or so of lazy imports) is left out of the timing, as `train` does.
TARGET = textwrap.dedent(
    """
    import time

    import torch

    SAMPLES = 4096


    def train(batch_size, epochs):
        torch.set_num_threads(1)
        if batch_size >= 1024:
            raise MemoryError("simulated: the batch does not fit")
        if batch_size % 2:
            raise ValueError("batch size must be even")
        torch.manual_seed(0)
        x = torch.randn(SAMPLES, 8)
        y = x.sum(dim=1, keepdim=True)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        print("training at", batch_size)  # the user's output must not break the worker
        start_time = time.perf_counter()
        for _ in range(epochs):
            for start in range(0, SAMPLES, batch_size):
                loss = torch.nn.functional.mse_loss(model(x[start : start + batch_size]), y[start : start + batch_size])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        time_per_epoch = (time.perf_counter() - start_time) / epochs
        with torch.no_grad():
            test_loss = torch.nn.functional.mse_loss(model(x[:256]), y[:256])
        return {
            "samples_per_epoch": SAMPLES,
            "time_per_epoch": time_per_epoch,
            "train_loss": loss.item(),
            "test_loss": test_loss,
        }


    def train_untimed(batch_size, epochs):
        result = train(batch_size, epochs)
        del result["time_per_epoch"]
        return result
    """
)


@pytest.fixture
def target_dir(tmp_path: Path) -> Path:
    (tmp_path / "tiny_train.py").write_text(TARGET)
    return tmp_path


def test_sweep_marks_oom_and_errors_and_recommends_the_fastest_size_that_fits(
    target_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(target_dir)  # MODULE is imported from the current directory
    report = target_dir / "profile.md"
    args = ["profile-batch", "tiny_train:train", "--batch-sizes", "4", "1024", "3", "256", "--epochs", "1"]
    assert main([*args, "--output", str(report)]) == 0

    text = report.read_text()
    header = (
        "| Batch Size | Time/Epoch | Peak RSS | Samples/Sec | Final Train Loss | Final Test Loss | Status |"
    )
    assert header in text
    rows = {
        line.split("|")[1].strip(): line
        for line in text.splitlines()
        if line.startswith("| ") and "Batch" not in line
    }
    assert list(rows) == [
        "4",
        "1,024",
        "3",
        "256",
    ]  # in the order asked, the sweep went on after each failure
    assert rows["1,024"].rstrip().endswith("| OOM |")
    assert rows["3"].rstrip().endswith("| ERROR |")
    assert rows["4"].rstrip().endswith("| OK |") and rows["256"].rstrip().endswith("| OK |")
    assert "- **1,024** (OOM): MemoryError: simulated: the batch does not fit (tiny_train.py:" in text
    assert "- **3** (ERROR): ValueError: batch size must be even (tiny_train.py:" in text
    recommendation = text.split("## Recommendation")[1]
    assert "**Optimal batch size: 256**" in recommendation
    assert "Time/Epoch is the `time_per_epoch` the function returned." in text
    assert "70%-80% of device memory" in recommendation
    assert "peak resident memory (RSS)" in recommendation  # on CPU, says what was measured
    assert "consider scaling the learning rate" in recommendation  # 16 steps leave 256 far behind on loss
    assert "Recommended batch size: 256" in capsys.readouterr().out


def test_api_returns_seed_results_from_a_file_target(target_dir: Path) -> None:
    results = profile_batch_sizes(f"{target_dir / 'tiny_train.py'}:train_untimed", [8, 2048], test_epochs=2)
    assert [r.batch_size for r in results] == [8, 2048]
    fit, oom = results
    assert isinstance(fit, ProfileResult) and not fit.oom_error and oom.oom_error
    assert fit.status == "OK" and oom.status == "OOM"
    assert fit.epochs == 2 and fit.time_source == "wall"
    assert fit.time_per_epoch is not None and fit.time_per_epoch > 0
    assert fit.samples_per_second == pytest.approx(4096 / fit.time_per_epoch)
    assert fit.peak_memory_bytes is not None and fit.peak_memory_bytes > 10e6  # a process with torch loaded
    assert fit.final_train_loss is not None and fit.final_test_loss is not None  # the tensor became a float
    assert oom.time_per_epoch is None and oom.samples_per_second is None


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tiny_train", "'tiny_train' is not MODULE:FUNC"),
        ("no_such_module:train", "no module named 'no_such_module'"),
        ("tiny_train:no_such_func", "tiny_train has no function 'no_such_func'"),
        ("missing.py:train", "no such file: missing.py"),
    ],
)
def test_bad_target_is_exit_2_with_one_line_before_any_batch_runs(
    target_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    target: str,
    message: str,
) -> None:
    monkeypatch.chdir(target_dir)
    code = main(["profile-batch", target, "--batch-sizes", "4", "--output", "out.md"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"termmon profile-batch: {message}") and "\n" not in err
    assert not (target_dir / "out.md").exists()


def test_non_positive_batch_size_is_bad_usage(target_dir: Path) -> None:
    with pytest.raises(UsageError, match="batch sizes must be positive"):
        profile_batch_sizes(f"{target_dir / 'tiny_train.py'}:train", [0])
