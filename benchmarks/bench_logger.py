"""Telemetry overhead on CPU training loops (docs/performance.md).

    python -m benchmarks.bench_logger [--rounds 6] [--steps 50] [--wide-steps 40] [--many-steps 30]

Interleaved in one process: rounds alternate a plain loop (the floor) and the same loop with default
telemetry at log_every=10, so machine noise hits both alike. Also reports the cost of one ``tm.step``
on non-log and log steps, timed around the call, and the share of a non-log ``tm.step`` that its
thread-safety lock takes (the lock alone timed beside a model-free ``tm.step`` in the same run).

Then the cost of a log step on big models, where per-tensor work shows: a wide MLP (few large tensors)
and a many-tensor model (10,000 parameter tensors). Each whole training iteration is timed, classified as
a log or non-log step, beside iterations without telemetry (the floor) in the same run; every log step
carries every statistic (``per_layer_stats_every_logs=1``: the worst case).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time

import torch

from termmon.telemetry import Telemetry


def _setup() -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(1024, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 2048), torch.nn.ReLU(),
        torch.nn.Linear(2048, 1024),
    )  # fmt: skip
    return (
        model,
        torch.optim.AdamW(model.parameters(), lr=1e-4),
        torch.randn(128, 1024),
        torch.randn(128, 1024),
    )


class _ManyTensors(torch.nn.Module):
    """5,000 parallel ``Linear(16, 16)`` branches summed: 10,000 parameter tensors of 256 + 16 elements."""

    def __init__(self, branches: int = 5_000, width: int = 16) -> None:
        super().__init__()
        self.branches = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(branches))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([branch(x) for branch in self.branches]).sum(dim=0)


def _big_model(kind: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    if kind == "wide":
        wide = torch.nn.Sequential(torch.nn.Linear(512, 8192), torch.nn.ReLU(), torch.nn.Linear(8192, 512))
        return wide, torch.randn(64, 512), torch.randn(64, 512)
    return _ManyTensors(), torch.randn(8, 16), torch.randn(8, 16)


def _log_step_cost(kind: str, steps: int) -> None:
    """Median whole-iteration time: no telemetry, telemetry non-log step, telemetry log step."""
    model, x, y = _big_model(kind)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    tensors = sum(1 for _ in model.parameters())
    n_params = sum(p.numel() for p in model.parameters())

    def iteration(tm: Telemetry | None) -> float:
        t0 = time.perf_counter()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if tm is not None:
            tm.step(loss=loss, batch_size=x.shape[0])
        opt.zero_grad()
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {"floor": [], "non-log": [], "log": []}
    with (
        tempfile.TemporaryDirectory() as tmp,
        Telemetry(tmp, kind, log_every=5, per_layer_stats_every_logs=1, track_system=False) as tm,
    ):
        tm.watch(model, opt)
        for _ in range(6):  # warm-up, and the first log step (run start, config, model summary)
            iteration(tm)
        for _ in range(steps):  # interleaved so machine noise hits all three alike
            times["floor"].append(iteration(None))
            is_log = tm.global_step + 1 - tm._last_log_step >= tm.log_every
            times["log" if is_log else "non-log"].append(iteration(tm))
    floor, plain, log = (statistics.median(times[k]) * 1e3 for k in ("floor", "non-log", "log"))
    print(
        f"| {kind} ({tensors:,} tensors, {n_params / 1e6:.2f} M params) | {floor:.1f} ms | {plain:.1f} ms "
        f"| {log:.1f} ms | {log / plain:.2f}x |"
    )


def _lock_cost(calls: int = 200_000) -> tuple[float, float]:
    """Seconds per model-free non-log ``tm.step`` and per uncontended RLock enter/exit."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        Telemetry(tmp, "lock", log_every=10**9, track_system=False) as tm,
    ):
        t0 = time.perf_counter()
        for _ in range(calls):
            tm.step()
        step = (time.perf_counter() - t0) / calls
    lock = threading.RLock()
    t0 = time.perf_counter()
    for _ in range(calls):
        with lock:
            pass
    return step, (time.perf_counter() - t0) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--wide-steps", type=int, default=40)
    parser.add_argument("--many-steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, opt, x, y = _setup()
    n_params = sum(p.numel() for p in model.parameters())

    def train_step() -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    plain: list[float] = []
    logged: list[float] = []
    step_cost: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp, Telemetry(tmp, "bench", log_every=10) as tm:
        tm.watch(model, opt)
        for _ in range(3):
            train_step()
            opt.zero_grad()
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for _ in range(args.steps):
                train_step()
                opt.zero_grad()
            plain.append((time.perf_counter() - t0) / args.steps)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                loss = train_step()
                is_log = tm.global_step + 1 - tm._last_log_step >= tm.log_every
                s0 = time.perf_counter()
                tm.step(loss=loss, batch_size=128)
                step_cost[is_log].append(time.perf_counter() - s0)
                opt.zero_grad()
            logged.append((time.perf_counter() - t0) / args.steps)
    floor, with_tm = statistics.median(plain), statistics.median(logged)
    print(
        f"MLP {n_params / 1e6:.1f} M params, batch 128, CPU 1 thread, {args.rounds}x{args.steps} steps each\n"
    )
    print("| measure | value |\n|---|---|")
    print(f"| step, no telemetry (floor) | {floor * 1e3:.1f} ms |")
    print(f"| step, telemetry log_every=10 | {with_tm * 1e3:.1f} ms |")
    print(f"| slowdown | {100 * (with_tm / floor - 1):+.2f} % |")
    print(f"| tm.step, non-log step (median) | {statistics.median(step_cost[False]) * 1e3:.3f} ms |")
    print(f"| tm.step, log step (median, excl. optimizer-hook work) | "
          f"{statistics.median(step_cost[True]) * 1e3:.2f} ms |")  # fmt: skip
    bare, lock = _lock_cost()
    print(f"| tm.step, non-log, no model | {bare * 1e6:.2f} µs |")
    print(f"| of which the step lock (RLock enter/exit) | {lock * 1e6:.2f} µs |")
    print(
        "\nWhole iteration (forward, backward, SGD step, tm.step), median; log_every=5, every statistic on"
        " every log step\n"
    )
    print("| model | no telemetry (floor) | non-log step | log step | log / non-log |\n|---|---|---|---|---|")
    _log_step_cost("wide", args.wide_steps)
    _log_step_cost("many", args.many_steps)


if __name__ == "__main__":
    main()
