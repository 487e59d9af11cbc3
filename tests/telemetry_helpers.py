"""A tiny real training loop and a metrics.jsonl reader shared by the telemetry tests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch


def records(run_dir: Path) -> list[dict[str, Any]]:
    with open(run_dir / "metrics.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def events(run_dir: Path, name: str) -> list[dict[str, Any]]:
    return [r for r in records(run_dir) if r["event"] == name]


class TinyTask:
    """A 3-class MLP on fixed random data: real forward, backward and optimizer steps in ~1 ms each."""

    def __init__(self, lr: float = 1e-2, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.x = torch.randn(64, 16)
        self.y = torch.randint(0, 3, (64,))

    def train_step(self) -> torch.Tensor:
        loss = torch.nn.functional.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        return loss

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()


def wait_until_exists(path: Path, timeout: float = 30.0) -> None:
    """Wait for the logger's writer thread to create ``path`` (it does so after the first record)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
