"""Tiny real CPU trainings with the bugs that make a run fail (most of them silently), and healthy runs
that a naive detector would flag. Each is logged through ``Telemetry`` at its defaults, the way the README
tells a user to set it up, and says where its bug starts: the step measured from the training itself
(the first bad batch, the step the schedule broke), not from what the alerts say.

``python -m tests.trainings DIR`` trains them all into DIR and prints what termmon says about each.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from termmon import Telemetry

FEATURES, CLASSES, BATCH = 20, 4, 32


@dataclass(frozen=True)
class Outcome:
    """What a training did: where its bug began (None for a healthy run) and how long it ran."""

    run_dir: Path
    steps: int
    onset: int | None


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str | None  # the alert kind that names the bug; None: a healthy run
    train: Callable[[Path], Outcome]
    #: The alert may come this many steps after the onset at most; None: max(20 steps, 3% of the run).
    bound: int | None = None

    def allowed_delay(self, steps: int) -> int:
        return self.bound if self.bound is not None else max(20, math.ceil(0.03 * steps))


class Task:
    """A learnable classification problem: labels from a fixed random teacher network."""

    def __init__(self, seed: int, n: int = 2048) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, FEATURES, generator=self.gen)
        teacher = torch.randn(FEATURES, CLASSES, generator=self.gen)
        self.y = (self.x @ teacher + 0.3 * torch.randn(n, CLASSES, generator=self.gen)).argmax(1)

    def batches(self, size: int = BATCH) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            index = torch.randint(0, len(self.x), (size,), generator=self.gen)
            yield self.x[index], self.y[index]


def mlp(seed: int, width: int = 64, depth: int = 2, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    size = FEATURES
    for _ in range(depth):
        layers += [nn.Linear(size, width), act()]
        size = width
    layers.append(nn.Linear(size, CLASSES))
    return nn.Sequential(*layers)


def _telemetry(root: Path, name: str) -> Telemetry:
    return Telemetry(log_dir=root, run_name=name)


def _loop(
    root: Path,
    name: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    steps: int,
    *,
    seed: int = 0,
    batch: int = BATCH,
    onset: int | None = None,
    before_step: Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    scheduler: Callable[[int], None] | None = None,
    call_step: bool = True,
) -> Outcome:
    """The README's loop; ``before_step(step, x, y)`` plants a data bug, ``scheduler(step)`` a schedule."""
    task = Task(seed)
    data = task.batches(batch)
    with _telemetry(root, name) as tm:
        tm.watch(model, optimizer)
        for step in range(1, steps + 1):
            x, y = next(data)
            if before_step is not None:
                x, y = before_step(step, x, y)
            if scheduler is not None:
                scheduler(step)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            if call_step:
                optimizer.step()
            tm.step(loss=loss)
            optimizer.zero_grad()
        return Outcome(tm.run_dir, steps, onset)


# --- bugs -----------------------------------------------------------------------------------------------
def forgot_step(root: Path) -> Outcome:
    model = mlp(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _loop(root, "forgot_step", model, optimizer, 800, onset=1, call_step=False)


def lr_zero(root: Path) -> Outcome:
    model = mlp(2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    return _loop(root, "lr_zero", model, optimizer, 800, onset=1)


def deep_sigmoid(root: Path) -> Outcome:
    """Twelve sigmoid layers with a small init: the input-side layers get no gradient from step 1."""
    model = mlp(3, width=32, depth=12, act=nn.Sigmoid)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.normal_(0.0, 0.05)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return _loop(root, "deep_sigmoid", model, optimizer, 800, onset=1)


def dead_relu(root: Path) -> Outcome:
    """A bias init of -10 kills every ReLU of the first layer: nothing before the head learns."""
    model = mlp(4)
    with torch.no_grad():
        model[0].bias.fill_(-10.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _loop(root, "dead_relu", model, optimizer, 800, onset=1)


def shuffled_labels(root: Path) -> Outcome:
    """The labels are shuffled within every batch (a collate bug): nothing to learn."""
    gen = torch.Generator().manual_seed(5)

    def shuffle(step: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y[torch.randperm(len(y), generator=gen)]

    model = mlp(5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _loop(root, "shuffled_labels", model, optimizer, 2400, onset=1, before_step=shuffle)


def blank_inputs(root: Path) -> Outcome:
    """The data pipeline hands over all-zero inputs (a normalisation by a zero std): a dead network."""

    def blank(step: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros_like(x), y

    model = mlp(6)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return _loop(root, "blank_inputs", model, optimizer, 2400, onset=1, before_step=blank)


def labels_out_of_range(root: Path) -> Outcome:
    """From step 503 a share of batches carries label ``CLASSES`` (an off-by-one in a relabelling): the
    loop checks every batch, logs the check, and clamps so it can go on."""
    gen = torch.Generator().manual_seed(7)
    task = Task(7)
    data = task.batches()
    model = mlp(7)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps, onset = 1000, None
    with _telemetry(root, "labels_out_of_range") as tm:
        tm.watch(model, optimizer)
        for step in range(1, steps + 1):
            x, y = next(data)
            if step >= 503 and (step == 503 or torch.rand(1, generator=gen).item() < 0.2):
                y = y.clone()
                y[0] = CLASSES
                onset = onset or step
            check = {"label_min": y.min(), "label_max": y.max(), "n_codes": CLASSES}
            loss = F.cross_entropy(model(x), y.clamp(max=CLASSES - 1))
            loss.backward()
            optimizer.step()
            tm.step(loss=loss, data_sanity_check=check)
            optimizer.zero_grad()
        return Outcome(tm.run_dir, steps, onset)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def exploding(root: Path) -> Outcome:
    """A regression whose schedule bug multiplies the lr by 100 at step 400: past the stability limit of
    SGD, every step multiplies the weights' error, and the gradients with it."""
    task = Task(8)
    target = task.x @ torch.randn(FEATURES, 1, generator=task.gen) + 0.5 * torch.randn(
        len(task.x), 1, generator=task.gen
    )
    torch.manual_seed(8)
    model = nn.Sequential(nn.Linear(FEATURES, 32), nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.005)
    steps, onset = 800, 400
    with _telemetry(root, "exploding") as tm:
        tm.watch(model, optimizer)
        for step in range(1, steps + 1):
            index = torch.randint(0, len(task.x), (BATCH,), generator=task.gen)
            _set_lr(optimizer, 0.005 if step < onset else 0.12)
            loss = F.mse_loss(model(task.x[index]), target[index])
            loss.backward()
            optimizer.step()
            tm.step(loss=loss)
            optimizer.zero_grad()
        return Outcome(tm.run_dir, steps, onset)


def nan_input(root: Path) -> Outcome:
    """One corrupted sample (a NaN feature) at step 305 poisons the weights for good."""

    def corrupt(step: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if step == 305:
            x = x.clone()
            x[0, 0] = math.nan
        return x, y

    model = mlp(9)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _loop(root, "nan_input", model, optimizer, 800, onset=305, before_step=corrupt)


def lr_collapse_plateau(root: Path) -> Outcome:
    """The run learns, then a scheduler bug divides the lr by a million at step 800: flat from there."""
    model = mlp(10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def schedule(step: int) -> None:
        _set_lr(optimizer, 0.01 if step < 800 else 1e-8)

    return _loop(
        root, "lr_collapse_plateau", model, optimizer, 7000, onset=800, scheduler=schedule, batch=256
    )


VOCAB, SAMPLE = 12, 60


def collapse(root: Path) -> Outcome:
    """A next-token model on a cyclic sequence; from step 400 a padding bug makes every target token 0,
    and the samples the loop logs every log step collapse onto one token."""
    torch.manual_seed(11)
    model = nn.Sequential(nn.Embedding(VOCAB, 32), nn.Linear(32, VOCAB))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    gen = torch.Generator().manual_seed(11)
    steps, onset = 1000, 400
    with _telemetry(root, "collapse") as tm:
        tm.watch(model, optimizer)
        for step in range(1, steps + 1):
            start = torch.randint(0, VOCAB, (BATCH,), generator=gen)
            target = (start + 1) % VOCAB
            if step >= onset:
                target = torch.zeros_like(target)
            loss = F.cross_entropy(model(start), target)
            loss.backward()
            optimizer.step()
            extra = {}
            if step % 10 == 0:
                extra["collapse"] = _sample_stats(model, gen)
            tm.step(loss=loss, **extra)
            optimizer.zero_grad()
        return Outcome(tm.run_dir, steps, onset)


def _sample_stats(model: nn.Module, gen: torch.Generator) -> dict[str, object]:
    token = torch.randint(0, VOCAB, (1,), generator=gen)
    tokens = []
    with torch.no_grad():
        for _ in range(SAMPLE):
            probs = torch.softmax(model(token), dim=-1)
            token = torch.multinomial(probs, 1, generator=gen).reshape(1)
            tokens.append(int(token))
    counts = torch.bincount(torch.tensor(tokens), minlength=VOCAB)
    return {
        "most_common_ratio": float(counts.max()) / SAMPLE,
        "unique_tokens": int((counts > 0).sum()),
        "total_tokens": SAMPLE,
        "sample": " ".join(str(t) for t in tokens[:20]),
    }


# --- healthy runs that a naive detector flags -------------------------------------------------------------
def slow_sgd(root: Path) -> Outcome:
    model = mlp(20)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.003)
    return _loop(root, "slow_sgd", model, optimizer, 3000, seed=20)


def warmup_spike(root: Path) -> Outcome:
    """A warm-up to an lr that is too high for a while: the loss spikes, then the decay brings it down."""
    model = mlp(21)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def schedule(step: int) -> None:
        _set_lr(optimizer, 0.05 * min(1.0, step / 100) if step < 300 else 1e-3)

    return _loop(root, "warmup_spike", model, optimizer, 2000, seed=21, scheduler=schedule)


def cosine_restarts(root: Path) -> Outcome:
    model = mlp(22)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    cosine = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=400)

    def schedule(step: int) -> None:
        if step > 1:
            cosine.step()

    return _loop(root, "cosine_restarts", model, optimizer, 2400, seed=22, scheduler=schedule)


def batch_size_2(root: Path) -> Outcome:
    model = mlp(23)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    return _loop(root, "batch_size_2", model, optimizer, 3000, seed=23, batch=2)


def plateau_then_drop(root: Path) -> Outcome:
    """A deep narrow tanh net from a small init sits on a saddle for a few hundred steps, then learns."""
    model = mlp(24, width=16, depth=6, act=nn.Tanh)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.weight.normal_(0.0, 0.08)
                layer.bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return _loop(root, "plateau_then_drop", model, optimizer, 2500, seed=24)


BUGS = [
    Scenario("forgot_step", "no_param_updates", forgot_step),
    Scenario("lr_zero", "no_param_updates", lr_zero),
    Scenario("deep_sigmoid", "vanishing_gradients", deep_sigmoid),
    Scenario("dead_relu", "vanishing_gradients", dead_relu),
    Scenario("shuffled_labels", "loss_plateau", shuffled_labels, bound=2100),
    Scenario("blank_inputs", "loss_plateau", blank_inputs, bound=2100),
    Scenario("labels_out_of_range", "label_out_of_range", labels_out_of_range, bound=0),
    Scenario("exploding", "exploding_gradients", exploding),
    Scenario("nan_input", "nan_inf", nan_input, bound=10),
    Scenario("collapse", "model_collapse", collapse),
    Scenario("lr_collapse_plateau", "loss_plateau", lr_collapse_plateau),
]
HEALTHY = [
    Scenario(f.__name__, None, f)
    for f in (slow_sgd, warmup_spike, cosine_restarts, batch_size_2, plateau_then_drop)
]


def main(argv: list[str]) -> int:
    from termmon.analysis.alerts import AlertEngine
    from termmon.loading import load_runs

    torch.set_num_threads(1)
    root = Path(argv[0] if argv else "trainings")
    wanted = set(argv[1:])
    for scenario in BUGS + HEALTHY:
        if wanted and scenario.name not in wanted:
            continue
        outcome = scenario.train(root)
        run = load_runs([str(outcome.run_dir)], progress=False)[0]
        alerts = AlertEngine().update(run, now=run.last_time + 1)
        print(f"== {scenario.name} (expect {scenario.kind} near {outcome.onset}, {outcome.steps} steps)")
        for alert in alerts:
            print(f"   {alert.severity:8} {alert.kind:20} step {alert.step}: {alert.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
