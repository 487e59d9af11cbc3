"""One batch size of profile-batch, in a process of its own.

``python -m termmon.tools.profile_batch_worker TARGET --result FILE (--check | --batch-size N --epochs E)``

A fresh process per batch size means an out-of-memory failure, a leaked CUDA cache or a fragmented
allocator cannot affect the next size, and peak-memory figures start from zero. The outcome goes to
FILE as JSON, never to stdout, which belongs to the user's training function.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from termmon.tools.profile_target import TargetError, describe_exception, resolve_target

STATUS_OK = "OK"
STATUS_OOM = "OOM"
STATUS_ERROR = "ERROR"
STATUS_BAD_TARGET = "BAD_TARGET"
_OOM_MESSAGES = ("out of memory", "can't allocate memory", "not enough memory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m termmon.tools.profile_batch_worker")
    parser.add_argument("target")
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--check", action="store_true", help="only resolve TARGET")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        func = resolve_target(args.target)
    except TargetError as exc:
        outcome: dict[str, Any] = {"status": STATUS_BAD_TARGET, "error": str(exc)}
    else:
        outcome = {"status": STATUS_OK} if args.check else measure(func, args.batch_size, args.epochs)
    args.result.write_text(json.dumps(outcome), encoding="utf-8")
    return 0


def measure(func: Any, batch_size: int, epochs: int) -> dict[str, Any]:
    """Call ``func(batch_size=, epochs=)`` once and report time, peak memory and what it returned."""
    torch = _torch()
    cuda = torch is not None and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    outcome: dict[str, Any] = {"status": STATUS_OK, "error": None}
    start = time.perf_counter()
    try:
        returned = func(batch_size=batch_size, epochs=epochs)
        if cuda:
            torch.cuda.synchronize()
    except (Exception, SystemExit) as exc:  # the user's code: anything it raises is this size's result
        traceback.print_exc()  # into the worker's log, for whoever wants the whole story
        outcome = {"status": STATUS_OOM if _is_oom(exc, torch) else STATUS_ERROR, "error": _describe(exc)}
        returned = None
    outcome["seconds"] = time.perf_counter() - start
    outcome.update(_returned_metrics(returned))
    outcome.update(_memory(torch, cuda))
    return outcome


def _torch() -> Any:
    """torch, imported before the call so CUDA peak statistics can be reset; None where not installed."""
    if find_spec("torch") is None:
        return None
    import torch

    return torch


def _is_oom(exc: BaseException, torch: Any) -> bool:
    if isinstance(exc, MemoryError):
        return True
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    # The CPU allocator and older CUDA paths raise a plain RuntimeError that says so.
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MESSAGES)


def _describe(exc: BaseException) -> str:
    """The one-line message plus where in the user's code it was raised."""
    message = describe_exception(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        message += f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})"
    return message


def _returned_metrics(returned: Any) -> dict[str, float | None]:
    values = returned if isinstance(returned, Mapping) else {}
    keys = ("samples_per_epoch", "time_per_epoch", "train_loss", "test_loss")
    return {key: _number(values.get(key)) for key in keys}


def _number(value: Any) -> float | None:
    """A float from a Python number, numpy scalar or one-element tensor; None for anything else."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _memory(torch: Any, cuda: bool) -> dict[str, Any]:
    import psutil

    memory: dict[str, Any] = {
        "peak_rss_bytes": _peak_rss(),
        "device": f"CPU ({os.cpu_count()} cores)",
        "device_memory_bytes": psutil.virtual_memory().total,
        "peak_gpu_bytes": None,
    }
    peak_gpu = torch.cuda.max_memory_allocated() if cuda else 0
    if peak_gpu:  # CUDA present but unused (a CPU-only target) reports RSS, not a misleading 0 GB
        index = torch.cuda.current_device()
        memory.update(
            peak_gpu_bytes=peak_gpu,
            device=torch.cuda.get_device_name(index),
            device_memory_bytes=torch.cuda.get_device_properties(index).total_memory,
        )
    return memory


def _peak_rss() -> int:
    try:
        import resource
    except ImportError:  # Windows: the current RSS is the best figure psutil has without a peak
        import psutil

        return int(psutil.Process().memory_info().rss)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB elsewhere


if __name__ == "__main__":
    sys.exit(main())
