"""Small real trainings that write termmon runs: the demo's live run and the shipped ``demo_runs/``.

Each is a plain PyTorch loop with the three ``Telemetry`` lines, cheap enough for a laptop CPU, and each
shows one thing the monitor is for: diagnostics of a two-layer denoiser, a learning rate that drives a
run to NaN, a model that overfits a tiny data set, and a LoRA-style adapter run logged per step.
``pace_s`` sleeps after every step so a live demo unfolds at watching speed.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import torch

from termmon.telemetry import Telemetry

PathLike = str | os.PathLike[str]


def _pace(pace_s: float) -> None:
    if pace_s > 0:
        time.sleep(pace_s)


def _sparse_signals(batch: int, d: int, density: float, gen: torch.Generator) -> torch.Tensor:
    """Each coordinate is 0, or +1 / -1 with probability ``density``: two features per input."""
    active = (torch.rand(batch, d, generator=gen) < density).float()
    return active * (2 * torch.randint(0, 2, (batch, d), generator=gen) - 1).float()


def train_denoiser(
    log_dir: PathLike,
    run_name: str = "denoiser_blobs",
    epochs: int = 20,
    steps_per_epoch: int = 50,
    pace_s: float = 0.0,
    d: int = 16,
    hidden: int = 128,
    seed: int = 0,
    **telemetry: Any,
) -> None:
    """A two-layer ReLU denoiser (d -> hidden -> d) on sparse signed signals with Gaussian noise, its
    weights held in a box of +-0.5; seed 001's blob diagnostics on the (encoder, decoder) pairs every epoch.

    Why blobs form: from a small start the units first share every feature (one cloud on the diagonal,
    correlation near 1). The box caps each unit's gain at 0.25, below the ~1 a feature needs, so
    recovering the loss takes several units per feature and each unit pushes its pairs into a corner:
    (+0.5, +0.5) for a +1 feature, (-0.5, -0.5) for a -1 feature, the rest back to (0, 0). With
    ``hidden = 8 * d`` the corners hold a few percent of the pairs each, enough for DBSCAN(eps=0.1,
    min_samples=50); at this learning rate they separate around epoch 6-9 of 20 (1 -> 3 clusters, silhouette
    from ~0.84 rising, correlation down from ~0.95 to ~0.9) as the loss settles. A lower rate leaves the
    units sharing features in one cloud; a higher one saturates the corners within two epochs.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    density, noise_std, lr, box, init, batch = 0.1, 0.3, 1e-2, 0.5, 0.05, 256
    encoder, decoder = torch.nn.Linear(d, hidden), torch.nn.Linear(hidden, d)
    model = torch.nn.Sequential(encoder, torch.nn.ReLU(), decoder)
    with torch.no_grad():
        for layer in (encoder, decoder):
            layer.weight.uniform_(-init, init)
            layer.bias.zero_()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    config = {
        "task": "denoising",
        "d": d,
        "hidden": hidden,
        "density": density,
        "noise_std": noise_std,
        "lr": lr,
        "weight_box": box,
        "init_scale": init,
        "batch_size": batch,
    }
    options = {"log_every": 10, "enable_diagnostics": True, "diagnostic_sample_size": d * hidden, **telemetry}
    test_x = _sparse_signals(512, d, density, gen)
    test_noisy = test_x + noise_std * torch.randn(test_x.shape, generator=gen)
    with Telemetry(log_dir, run_name, config=config, **options) as tm:
        tm.watch(model, optimizer)
        for epoch in range(epochs):
            total = 0.0
            for _ in range(steps_per_epoch):
                x = _sparse_signals(batch, d, density, gen)
                noisy = x + noise_std * torch.randn(x.shape, generator=gen)
                loss = ((model(noisy) - x) ** 2).sum(dim=1).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    for layer in (encoder, decoder):
                        layer.weight.clamp_(-box, box)
                tm.step(loss=loss, batch_size=batch)
                total += float(loss.detach())
                _pace(pace_s)
            with torch.no_grad():
                test_loss = float(((model(test_noisy) - test_x) ** 2).sum(dim=1).mean())
            tm.epoch(epoch, train={"loss": total / steps_per_epoch}, test={"loss": test_loss})


def train_diverging(
    log_dir: PathLike,
    run_name: str = "diverging_lr",
    steps: int = 400,
    lr: float = 1e-4,
    warmup_growth: float = 1.03,
    pace_s: float = 0.0,
    seed: int = 0,
    **telemetry: Any,
) -> None:
    """Regression whose learning-rate warm-up never stops (a scheduler bug): it trains well while the lr
    is sane, then the loss explodes past the stability limit (~step 260) and goes Inf, then NaN."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_growth**step)
    true_w = torch.randn(20, 1, generator=gen)
    config = {"task": "regression", "lr": lr, "warmup_growth": warmup_growth}
    with Telemetry(log_dir, run_name, config=config, **{"log_every": 5, **telemetry}) as tm:
        tm.watch(model, optimizer)
        for epoch in range(steps // 50):
            for _ in range(50):
                x = torch.randn(128, 20, generator=gen)
                loss = torch.nn.functional.mse_loss(model(x), x @ true_w)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                tm.step(loss=loss, batch_size=128)
                _pace(pace_s)
            tm.epoch(epoch, train={"loss": loss})


def train_overfitting(
    log_dir: PathLike,
    run_name: str = "overfitting_tiny",
    epochs: int = 60,
    pace_s: float = 0.0,
    seed: int = 0,
    **telemetry: Any,
) -> None:
    """A wide MLP on 64 labelled examples: train loss falls to ~0 while test loss turns and climbs."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    teacher = torch.randn(16, 2, generator=gen)

    def data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, 16, generator=gen)
        logits = x @ teacher + 1.5 * torch.randn(n, 2, generator=gen)  # noisy labels: memorising them hurts
        return x, logits.argmax(dim=1)

    train_x, train_y = data(64)
    test_x, test_y = data(1024)
    model = torch.nn.Sequential(torch.nn.Linear(16, 256), torch.nn.ReLU(), torch.nn.Linear(256, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    config = {"task": "classification", "train_examples": 64, "lr": 3e-3}
    with Telemetry(log_dir, run_name, config=config, **{"log_every": 5, **telemetry}) as tm:
        tm.watch(model, optimizer, holdout=(test_x, test_y))
        for epoch in range(epochs):
            for i in range(0, 64, 16):
                xb, yb = train_x[i : i + 16], train_y[i : i + 16]
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                tm.step(loss=loss, batch_size=16, labels=yb)
                _pace(pace_s)
            with torch.no_grad():
                train_loss = torch.nn.functional.cross_entropy(model(train_x), train_y)
                test_logits = model(test_x)
                test_loss = torch.nn.functional.cross_entropy(test_logits, test_y)
                test_acc = (test_logits.argmax(dim=1) == test_y).float().mean()
            tm.epoch(epoch, train={"loss": train_loss}, test={"loss": test_loss, "accuracy": test_acc})


class _LoRALinear(torch.nn.Module):
    """A frozen linear layer plus a trainable low-rank update ``B @ A`` (B starts at zero)."""

    def __init__(self, base: torch.nn.Linear, rank: int) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_a = torch.nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.lora_b = torch.nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frozen: torch.Tensor = self.base(x)
        return frozen + x @ self.lora_a.t() @ self.lora_b.t()


def train_lora_style(
    log_dir: PathLike,
    run_name: str = "lora_steps",
    steps: int = 400,
    rank: int = 4,
    pace_s: float = 0.0,
    seed: int = 0,
    **telemetry: Any,
) -> None:
    """Seed 002's setting: a frozen base with LoRA adapters, logged per step with warmup + cosine lr."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(
        _LoRALinear(torch.nn.Linear(64, 128), rank),
        torch.nn.GELU(),
        _LoRALinear(torch.nn.Linear(128, 64), rank),
    )
    target = torch.nn.Linear(64, 64)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    warmup = steps // 10

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    config = {
        "task": "lora",
        "lora_rank": rank,
        "lora_alpha": rank,
        "target_modules": ["0", "2"],
        "steps": steps,
    }
    with Telemetry(log_dir, run_name, config=config, **{"log_every": 5, **telemetry}) as tm:
        tm.watch(model, optimizer)
        for step in range(steps):
            x = torch.randn(64, 64, generator=gen)
            with torch.no_grad():
                y = target(x)
            loss = torch.nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            tm.step(loss=loss, batch_size=64, grad_norm=grad_norm)
            if (step + 1) % 100 == 0:
                tm.checkpoint(f"lora_adapter_step{step + 1}.safetensors")
            _pace(pace_s)


#: The shipped ``demo_runs/``: run name -> the training that writes it.
DEMO_TRAININGS: dict[str, Callable[..., object]] = {
    "denoiser_blobs": train_denoiser,
    "diverging_lr": train_diverging,
    "overfitting_tiny": train_overfitting,
    "lora_steps": train_lora_style,
}


def write_demo_runs(out: str | os.PathLike[str]) -> list[str]:
    """Train every demo run into ``out`` (about 10 s on one CPU core); returns the run names."""
    torch.set_num_threads(1)
    for name, train in DEMO_TRAININGS.items():
        train(out, name)
    return list(DEMO_TRAININGS)
