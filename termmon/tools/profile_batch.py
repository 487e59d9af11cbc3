"""``termmon profile-batch MODULE:FUNC --batch-sizes N ... --epochs E --output FILE.md``: seed 001's profiler.

Each batch size runs ``FUNC(batch_size=N, epochs=E)`` in a fresh worker process
(``termmon.tools.profile_batch_worker``), one after another so they never compete for the device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import termmon
from termmon.errors import TermmonError, UsageError
from termmon.paths import require_output_file
from termmon.tools.profile_batch_worker import STATUS_BAD_TARGET, STATUS_ERROR, STATUS_OK, STATUS_OOM
from termmon.tools.profile_target import TargetError, split_target
from termmon.tools.progress import stderr_progress

_WORKER = "termmon.tools.profile_batch_worker"
_LOG_TAIL_LINES = 3


@dataclass(frozen=True)
class ProfileResult:
    """One batch size's outcome. ``status`` is OK, OOM or ERROR; measurements are None where unknown.

    ``time_source`` is "function" when FUNC returned its own ``time_per_epoch`` (training alone), else
    "wall": its wall time divided by the epochs, set-up and first-call warm-up included.
    """

    batch_size: int
    epochs: int
    status: str
    error: str | None = None
    time_per_epoch: float | None = None
    samples_per_second: float | None = None
    peak_gpu_memory_bytes: int | None = None
    peak_rss_bytes: int | None = None
    device: str = ""
    device_memory_bytes: int | None = None
    time_source: str = "wall"
    final_train_loss: float | None = None
    final_test_loss: float | None = None

    @property
    def oom_error(self) -> bool:
        """Seed 001's flag: this batch size did not fit in memory."""
        return self.status == STATUS_OOM

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def on_gpu(self) -> bool:
        return self.peak_gpu_memory_bytes is not None

    @property
    def peak_memory_bytes(self) -> int | None:
        """Peak GPU memory when the run used CUDA, else the worker's peak resident memory."""
        return self.peak_gpu_memory_bytes if self.on_gpu else self.peak_rss_bytes


def run_profile_batch(target: str, batch_sizes: list[int], *, epochs: int, output: Path) -> int:
    """The CLI entry: sweep, write the report, print the recommendation; exit 1 if nothing fit."""
    results = profile_batch_sizes(target, batch_sizes, test_epochs=epochs, output_path=output)
    print(f"Wrote {output}")
    fits = [r for r in results if r.ok]
    if not fits:
        raise TermmonError(f"termmon profile-batch: no batch size completed; see {output}")
    from termmon.tools.profile_report import recommend

    best = recommend(fits)
    throughput = f", {best.samples_per_second:,.0f} samples/sec" if best.samples_per_second else ""
    print(f"Recommended batch size: {best.batch_size:,}{throughput}")
    return 0


def profile_batch_sizes(
    target: str | Callable[..., Any],
    batch_sizes: Sequence[int],
    test_epochs: int = 5,
    output_path: Path | str | None = None,
    *,
    python: str = sys.executable,
) -> list[ProfileResult]:
    """Profile ``target`` at each batch size, in order; write the Markdown report when ``output_path`` is given.

    ``target`` is ``"MODULE:FUNC"`` or a module-level function (turned into that form, since the worker
    must import it afresh). An unusable target raises UsageError before any batch size runs.
    """
    spec = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
    if not batch_sizes or any(size < 1 for size in batch_sizes):
        raise UsageError("termmon profile-batch: batch sizes must be positive integers")
    if test_epochs < 1:
        raise UsageError("termmon profile-batch: --epochs must be at least 1")
    if output_path is not None:  # before the sweep: a wrong path must not throw the measurements away
        require_output_file(Path(output_path), "termmon profile-batch")
    with tempfile.TemporaryDirectory(prefix="termmon-profile-") as scratch:
        workdir = Path(scratch)
        _check_target(spec, workdir, python)
        results = []
        with stderr_progress() as progress:
            task = progress.add_task("profiling", total=len(batch_sizes))
            for size in batch_sizes:
                progress.update(task, description=f"batch size {size:,}")
                results.append(_profile_one(spec, size, test_epochs, workdir, python))
                progress.advance(task)
    if output_path is not None:
        from termmon.tools.profile_report import report_markdown

        path = Path(output_path)
        try:
            path.write_text(report_markdown(spec, test_epochs, results), encoding="utf-8")
        except OSError as exc:
            raise TermmonError(f"termmon profile-batch: cannot write {path}: {exc.strerror or exc}") from exc
    return results


def _check_target(spec: str, workdir: Path, python: str) -> None:
    """Import the target in a throwaway worker: a module that sets up CUDA on import must not do so here."""
    try:
        split_target(spec)
    except TargetError as exc:
        raise UsageError(f"termmon profile-batch: {exc}") from exc
    outcome = _run_worker(spec, ["--check"], workdir / "check", python)
    if outcome.get("status") == STATUS_BAD_TARGET:
        raise UsageError(f"termmon profile-batch: {outcome['error']}")
    if outcome.get("status") != STATUS_OK:
        raise TermmonError(f"termmon profile-batch: checking {spec} failed: {outcome.get('error')}")


def _profile_one(spec: str, size: int, epochs: int, workdir: Path, python: str) -> ProfileResult:
    args = ["--batch-size", str(size), "--epochs", str(epochs)]
    outcome = _run_worker(spec, args, workdir / f"bs{size}", python)
    seconds = outcome.get("seconds")
    ok = outcome.get("status") == STATUS_OK
    reported = outcome.get("time_per_epoch")
    per_epoch = (reported or (seconds / epochs if seconds else None)) if ok else None
    samples = outcome.get("samples_per_epoch")
    return ProfileResult(
        batch_size=size,
        epochs=epochs,
        status=outcome.get("status", STATUS_ERROR),
        error=outcome.get("error"),
        time_per_epoch=per_epoch,
        samples_per_second=samples / per_epoch if per_epoch and samples else None,
        peak_gpu_memory_bytes=outcome.get("peak_gpu_bytes") if ok else None,
        peak_rss_bytes=outcome.get("peak_rss_bytes") if ok else None,
        device=outcome.get("device", ""),
        device_memory_bytes=outcome.get("device_memory_bytes"),
        time_source="function" if reported else "wall",
        final_train_loss=outcome.get("train_loss") if ok else None,
        final_test_loss=outcome.get("test_loss") if ok else None,
    )


def _run_worker(spec: str, args: list[str], stem: Path, python: str) -> dict[str, Any]:
    """Run one worker; its own output goes to a log whose tail explains a worker that died without a result."""
    result, log = stem.with_suffix(".json"), stem.with_suffix(".log")
    command = [python, "-m", _WORKER, spec, "--result", str(result), *args]
    with log.open("wb") as sink:
        code = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, env=_worker_env(), check=False)
    if result.exists():
        outcome: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
        return outcome
    return {"status": STATUS_ERROR, "error": _died(code.returncode, log)}


def _died(returncode: int, log: Path) -> str:
    if returncode < 0:
        how = f"worker killed by signal {-returncode}"
        if returncode == -9:
            how += " (often the kernel's out-of-memory killer)"
    else:
        how = f"worker exited with status {returncode} and no result"
    tail = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return f"{how}: {' / '.join(tail[-_LOG_TAIL_LINES:])}" if tail else how


def _worker_env() -> dict[str, str]:
    """The caller's environment, with this termmon importable even when it is not installed."""
    env = dict(os.environ)
    package_root = str(Path(termmon.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env
