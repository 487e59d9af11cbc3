"""Telemetry overhead on a ~8M-parameter MLP training loop on CPU (docs/performance.md).

    python -m benchmarks.bench_logger [--rounds 6] [--steps 50]

Interleaved in one process: rounds alternate a plain loop (the floor) and the same loop with default
telemetry at log_every=10, so machine noise hits both alike. Also reports the cost of one ``tm.step``
on non-log and log steps, timed around the call, and the share of a non-log ``tm.step`` that its
thread-safety lock takes (the lock alone timed beside a model-free ``tm.step`` in the same run).
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


if __name__ == "__main__":
    main()
