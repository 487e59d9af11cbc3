"""Telemetry overhead on CPU training loops, beside SummaryWriter and wandb offline (docs/performance.md).

    python -m benchmarks.bench_logger [--rounds 8] [--models tiny,small,3ms,wide,many] [--small-steps 200]
                                      [--wide-steps 20] [--many-steps 10] [--split-steps 30]

Five models: a tiny and a small MLP (fixed widths: ~1 and ~2 ms a step on a quiet reference box, up to 3x
that on a busy one, where a logger's fixed cost per step shows most), ``3ms``, an MLP whose width is chosen
at the start of the run so that a step takes ~3 ms on this machine as it is now (the size the 3 % goal is
set at, whatever the box's speed that day), a wide MLP (few large tensors) and a many-tensor model (10,000
parameter tensors). The MLPs run ``--small-steps`` steps a segment. For each, four loggers train
the same model in segments of the same length, interleaved round by round in a rotating order so the
machine's noise (2 cores shared with other jobs) hits all alike:

* floor: no logging at all;
* termmon: ``Telemetry`` at its defaults (``log_every=10``, every statistic, system probes);
* tensorboard: ``torch.utils.tensorboard.SummaryWriter`` logging the same scalars every 10 steps;
* wandb: ``wandb.log`` of the same scalars every 10 steps, ``WANDB_MODE=offline``, defaults otherwise.

"The same scalars" are the numeric fields of termmon's latest step record, by the same names: the loss
with ``.item()`` and the per-tensor gradient norms with one ``_foreach_norm`` and one transfer (what a
user of those tools would write), the rest (timings, memory) taken from termmon's record. A logger that is
not installed gets a row saying so. Each round's slowdown is the segment's time per step against the
same round's floor; the table gives the median over rounds.

Then the cost of a log step on the wide and the many-tensor model: whole iterations classified as log or
non-log steps, beside iterations without telemetry, with every statistic on every log step
(``per_layer_stats_every_logs=1``, the worst case).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from termmon.telemetry import Telemetry

LOG_EVERY = 10
LOGGERS = ("floor", "termmon", "tensorboard", "wandb")
#: Hidden width of the two fixed MLPs: "tiny" and "small", the sizes where a logger's fixed cost per step
#: shows most.
MLP_WIDTHS = {"tiny": 256, "small": 512}
#: MLPs sized on the spot to a step time (seconds) on this machine: the goal is set at ~3 ms a step, and the
#: fixed widths' step times move by 3x with the box's load from one day to the next.
MLP_STEP_TARGETS = {"3ms": 3e-3}
#: Widths tried for a target step time, smallest first.
CALIBRATION_WIDTHS = tuple(int(256 * 1.2**i) // 16 * 16 for i in range(16))


class _ManyTensors(torch.nn.Module):
    """5,000 parallel ``Linear(16, 16)`` branches summed: 10,000 parameter tensors of 256 + 16 elements."""

    def __init__(self, branches: int = 5_000, width: int = 16) -> None:
        super().__init__()
        self.branches = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(branches))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([branch(x) for branch in self.branches]).sum(dim=0)


@dataclass
class _Task:
    """One model with its optimizer and a fixed batch; ``iteration`` is forward, backward, step."""

    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    x: torch.Tensor
    y: torch.Tensor
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def forward_backward(self) -> torch.Tensor:
        loss = self.loss_fn(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        return loss


def _mlp(kind: str, width: int) -> _Task:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(256, width), torch.nn.ReLU(), torch.nn.Linear(width, width), torch.nn.ReLU(),
        torch.nn.Linear(width, 10),
    )  # fmt: skip
    opt = torch.optim.AdamW(mlp.parameters(), lr=1e-3)
    x, y = torch.randn(64, 256), torch.randint(0, 10, (64,))
    return _Task(kind, mlp, opt, x, y, torch.nn.functional.cross_entropy)


def _calibrated_width(target: float) -> int:
    """The narrowest width in CALIBRATION_WIDTHS whose step, timed as the floor's segments are (no
    logging), takes ``target`` seconds or more."""
    for width in CALIBRATION_WIDTHS:
        floor = _Logger(_mlp("calibration", width), _Scalars())
        floor.run(5)  # the allocator warmed
        if floor.run(15)[0] >= target:
            return width
    return CALIBRATION_WIDTHS[-1]


def _task(kind: str) -> _Task:
    torch.manual_seed(0)
    mse = torch.nn.functional.mse_loss
    if kind in MLP_WIDTHS:
        return _mlp(kind, MLP_WIDTHS[kind])
    if kind in MLP_STEP_TARGETS:
        return _mlp(kind, _calibrated_width(MLP_STEP_TARGETS[kind]))
    opt: torch.optim.Optimizer
    if kind == "wide":
        wide = torch.nn.Sequential(torch.nn.Linear(512, 8192), torch.nn.ReLU(), torch.nn.Linear(8192, 512))
        opt = torch.optim.SGD(wide.parameters(), lr=1e-3)
        return _Task(kind, wide, opt, torch.randn(64, 512), torch.randn(64, 512), mse)
    many = _ManyTensors()
    opt = torch.optim.SGD(many.parameters(), lr=1e-3)
    return _Task(kind, many, opt, torch.randn(8, 16), torch.randn(8, 16), mse)


@dataclass
class _Scalars:
    """The scalar names termmon wrote last, for the other loggers to log the same set."""

    record: dict[str, float] = field(default_factory=dict)

    def update(self, run_dir: str) -> None:
        import json

        path = os.path.join(run_dir, "metrics.jsonl")
        with open(path, encoding="utf-8") as fh:
            steps = [json.loads(line) for line in fh if '"event":"step"' in line]
        if steps:
            last = steps[-1]
            self.record = {
                k: float(v)
                for k, v in last.items()
                if isinstance(v, int | float) and k not in ("step", "epoch", "time")
            }

    def compute(self, task: _Task, loss: torch.Tensor) -> dict[str, float]:
        """What a user of SummaryWriter or wandb would compute: one norm pass and one transfer."""
        names = [n for n, p in task.model.named_parameters() if p.grad is not None]
        grads = [p.grad for p in task.model.parameters() if p.grad is not None]
        norms = torch.stack(torch._foreach_norm(grads))
        host = torch.cat([loss.detach().reshape(1), torch.linalg.vector_norm(norms).reshape(1), norms])
        values = host.tolist()
        out = dict(self.record)
        out["train_loss"], out["grad_norm"] = values[0], values[1]
        for name, norm in zip(names, values[2:], strict=True):
            key = f"gradients/{name}/norm"
            if key in out:
                out[key] = norm
        out["lr"] = float(task.optimizer.param_groups[0]["lr"])
        return out


def _cpu_seconds() -> float:
    """User + system CPU of this process (ns resolution) and of its live children (psutil, 10 ms)."""
    import psutil

    total = time.process_time()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


class _Logger:
    """One logger's session over the whole benchmark: ``run`` times a segment of steps."""

    name = "floor"

    def __init__(self, task: _Task, scalars: _Scalars) -> None:
        self.task = task
        self.scalars = scalars
        self.step = 0

    def log(self, loss: torch.Tensor) -> None:
        """Called after every optimizer step."""

    def settle(self) -> None:
        """Between segments, outside the timing: let this logger's background work finish."""

    def close(self) -> None:
        pass

    def run(self, steps: int) -> tuple[float, float]:
        """Wall seconds per step, and CPU seconds per step of this process and its children (wandb
        does its writing in a service process) counted until the logger has settled."""
        task = self.task
        c0 = _cpu_seconds()
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = task.forward_backward()
            self.step += 1
            self.log(loss)
            task.optimizer.zero_grad()
        elapsed = (time.perf_counter() - t0) / steps
        self.settle()
        return elapsed, (_cpu_seconds() - c0) / steps


class _Termmon(_Logger):
    name = "termmon"

    def __init__(self, task: _Task, scalars: _Scalars, root: str) -> None:
        super().__init__(task, scalars)
        self.run_dir = os.path.join(root, "termmon", task.name)
        self.tm = Telemetry(os.path.dirname(self.run_dir), task.name)
        #: CPU seconds the training thread spent inside termmon (step and the three hooks): thread CPU
        #: time, which a loaded machine's waiting does not inflate the way it does wall time.
        self.inside = 0.0
        #: The same CPU seconds by the function they were spent in (``step`` and each hook), warm-up included.
        self.by_call: dict[str, float] = {}
        #: The same CPU seconds of each whole iteration, for log steps (True) and the others: medians of
        #: these hold still on a loaded machine where the totals move by several percent from run to run.
        self.by_kind: dict[bool, list[float]] = {False: [], True: []}
        self._inside_before = 0.0
        for name in ("_before_forward", "_before_optimizer_step", "_after_optimizer_step"):
            setattr(self.tm, name, self._timed(getattr(self.tm, name)))  # before watch registers them
        self._step = self._timed(self.tm.step)
        self.tm.watch(task.model, task.optimizer)
        writer = self.tm._writer
        self._writer_clock = (
            time.pthread_getcpuclockid(writer._thread.ident)
            if writer is not None and writer._thread.ident is not None
            else None
        )

    def _timed(self, fn: Callable[..., None]) -> Callable[..., None]:
        name = fn.__name__

        def timed(*args: object, **kwargs: object) -> None:
            t0 = time.thread_time()
            try:
                fn(*args, **kwargs)
            finally:
                spent = time.thread_time() - t0
                self.inside += spent
                self.by_call[name] = self.by_call.get(name, 0.0) + spent

        return timed

    def writer_cpu(self) -> float:
        """CPU seconds of termmon's writer thread so far."""
        return 0.0 if self._writer_clock is None else time.clock_gettime(self._writer_clock)

    def log(self, loss: torch.Tensor) -> None:
        self._step(loss=loss, batch_size=self.task.x.shape[0])
        self.by_kind[self.tm._last_log_step == self.tm.global_step].append(self.inside - self._inside_before)
        self._inside_before = self.inside

    def settle(self) -> None:
        writer = self.tm._writer
        deadline = time.monotonic() + 30
        while writer is not None and not writer._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.005)
        with contextlib.suppress(OSError, ValueError):
            self.scalars.update(self.run_dir)

    def close(self) -> None:
        self.tm.close()


class _TensorBoard(_Logger):
    name = "tensorboard"

    def __init__(self, task: _Task, scalars: _Scalars, root: str) -> None:
        super().__init__(task, scalars)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(os.path.join(root, "tensorboard", task.name))

    def log(self, loss: torch.Tensor) -> None:
        if self.step % LOG_EVERY == 0:
            for key, value in self.scalars.compute(self.task, loss).items():
                self.writer.add_scalar(key, value, self.step)

    def settle(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _Wandb(_Logger):
    name = "wandb"

    def __init__(self, task: _Task, scalars: _Scalars, root: str) -> None:
        super().__init__(task, scalars)
        os.environ["WANDB_MODE"] = "offline"
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        folder = os.path.join(root, "wandb", task.name)
        os.makedirs(folder)
        self.wb = wandb.init(project="termmon-bench", name=task.name, dir=folder, reinit="create_new")

    def log(self, loss: torch.Tensor) -> None:
        if self.step % LOG_EVERY == 0:
            self.wb.log(self.scalars.compute(self.task, loss), step=self.step)

    def close(self) -> None:
        self.wb.finish()


def _open(name: str, kind: str, scalars: _Scalars, root: str) -> _Logger | str:
    """The logger on its own copy of the model (termmon's hooks must not fire in the others' steps), or
    why it cannot run here."""
    task = _task(kind)
    try:
        if name == "termmon":
            return _Termmon(task, scalars, root)
        if name == "tensorboard":
            return _TensorBoard(task, scalars, root)
        if name == "wandb":
            return _Wandb(task, scalars, root)
    except ImportError as exc:
        return f"skipped ({exc.name or exc} not installed)"
    return _Logger(task, scalars)


@contextlib.contextmanager
def _loggers(kind: str, root: str) -> Iterator[dict[str, _Logger | str]]:
    scalars = _Scalars()
    opened = {name: _open(name, kind, scalars, root) for name in LOGGERS}
    try:
        yield opened
    finally:
        for logger in opened.values():
            if isinstance(logger, _Logger):
                logger.close()


def _overhead(kind: str, rounds: int, steps: int) -> None:
    task = _task(kind)
    tensors = sum(1 for _ in task.model.parameters())
    n_params = sum(p.numel() for p in task.model.parameters())
    width = f"MLP width {task.model[0].out_features}, " if kind in MLP_STEP_TARGETS else ""
    label = f"{kind} ({width}{tensors:,} tensors, {n_params / 1e6:.2f} M params)"
    with tempfile.TemporaryDirectory() as root, _loggers(kind, root) as loggers:
        live = [logger for logger in loggers.values() if isinstance(logger, _Logger)]
        for logger in live:  # warm-up: allocator, first log step, termmon's record for the others' names
            logger.run(max(LOG_EVERY + 1, steps // 4))
        wall: dict[str, list[float]] = {logger.name: [] for logger in live}
        cpu: dict[str, list[float]] = {logger.name: [] for logger in live}
        own = next((logger for logger in live if isinstance(logger, _Termmon)), None)
        own_main = own_writer = 0.0
        for r in range(rounds):
            order = live[r % len(live) :] + live[: r % len(live)]
            for logger in order:
                if logger is own:
                    inside, writer = own.inside, own.writer_cpu()
                w, c = logger.run(steps)
                if logger is own:
                    own_main += own.inside - inside
                    own_writer += own.writer_cpu() - writer
                wall[logger.name].append(w)
                cpu[logger.name].append(c)
    for name, logger in loggers.items():
        if not isinstance(logger, _Logger):
            print(f"| {label} | {name} | {logger} | | | |")
            continue
        row = f"| {label} | {'floor (no logging)' if name == 'floor' else name} "
        row += f"| {statistics.median(wall[name]) * 1e3:.2f} ms | {_slowdown(wall, name)} "
        row += f"| {statistics.median(cpu[name]) * 1e3:.2f} ms | {_slowdown(cpu, name)} |"
        print(row)
    if own is not None:
        n = rounds * steps
        floor_cpu = statistics.median(cpu["floor"])
        print(
            f"| {label} | termmon's own CPU: training thread {own_main / n * 1e3:.3f} ms + writer thread "
            f"{own_writer / n * 1e3:.3f} ms a step | | {100 * (own_main + own_writer) / n / floor_cpu:.1f} % of "
            "the floor's CPU | |"
        )
        calls = ", ".join(f"{name} {spent / own.step * 1e6:.0f} us" for name, spent in own.by_call.items())
        print(f"| {label} | termmon's training-thread CPU a step by call: {calls} | | | |")
        plain, logged = (statistics.median(own.by_kind[k]) * 1e6 for k in (False, True))
        print(
            f"| {label} | termmon's training-thread CPU, median: non-log step {plain:.0f} us, log step {logged:.0f} us | | | |"
        )


def _slowdown(times: dict[str, list[float]], name: str) -> str:
    """Median over rounds of the segment against the same round's floor."""
    if name == "floor":
        return ""
    ratios = [t / f - 1 for t, f in zip(times[name], times["floor"], strict=True)]
    return f"{100 * statistics.median(ratios):+.1f} %"


def _log_step_cost(kind: str, steps: int) -> None:
    """Median whole-iteration time: no telemetry, telemetry non-log step, telemetry log step."""
    task = _task(kind)
    tensors = sum(1 for _ in task.model.parameters())
    n_params = sum(p.numel() for p in task.model.parameters())

    def iteration(tm: Telemetry | None) -> float:
        t0 = time.perf_counter()
        loss = task.forward_backward()
        if tm is not None:
            tm.step(loss=loss, batch_size=task.x.shape[0])
        task.optimizer.zero_grad()
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {"floor": [], "non-log": [], "log": []}
    with (
        tempfile.TemporaryDirectory() as tmp,
        Telemetry(tmp, kind, log_every=5, per_layer_stats_every_logs=1, track_system=False) as tm,
    ):
        tm.watch(task.model, task.optimizer)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--models", default="tiny,small,3ms,wide,many")
    parser.add_argument("--small-steps", type=int, default=200)
    parser.add_argument("--wide-steps", type=int, default=20)
    parser.add_argument("--many-steps", type=int, default=10)
    parser.add_argument("--split-steps", type=int, default=30, help="iterations for the log-step table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = [m for m in args.models.split(",") if m]
    steps = {
        "tiny": args.small_steps,
        "small": args.small_steps,
        **dict.fromkeys(MLP_STEP_TARGETS, args.small_steps),
        "wide": args.wide_steps,
        "many": args.many_steps,
    }
    print(
        f"One CPU thread; log_every={LOG_EVERY}; {args.rounds} interleaved rounds; slowdown = median over"
        " rounds of (segment / the same round's floor) - 1\n"
    )
    print("| model | logger | wall per step | wall slowdown | CPU per step | CPU slowdown |")
    print("|---|---|---:|---:|---:|---:|")
    for kind in models:
        _overhead(kind, args.rounds, max(LOG_EVERY, steps[kind]))
    big = [m for m in models if m not in MLP_WIDTHS and m not in MLP_STEP_TARGETS]
    if big and args.split_steps:
        print(
            "\nWhole iteration (forward, backward, SGD step, tm.step), median; log_every=5, every statistic"
            " on every log step\n"
        )
        print("| model | no telemetry (floor) | non-log step | log step | log / non-log |")
        print("|---|---|---|---|---|")
        for kind in big:
            _log_step_cost(kind, args.split_steps)


if __name__ == "__main__":
    main()
