"""What ``TermmonCallback`` costs inside HF ``Trainer`` and ``lightning.Trainer`` (docs/performance.md).

    python -m benchmarks.bench_integrations [--rounds 5] [--steps 100] [--only hf|lightning]

Both frameworks train the same tiny GPT-2 (2 layers, width 64, built from a config) from the same seed, in rounds that alternate the bare trainer
(the floor) and the same trainer with ``TermmonCallback`` at the same logging interval (10 steps), so
machine noise hits both alike. A round is one ``train()``/``fit()`` call of ``--steps`` optimizer steps,
timed around the call (the callback's set-up, writer thread and final flush included). The time spent
inside the callback's hooks is also timed, as a share of the round: on a loaded machine it is the steadier
figure, since the two rounds' difference is then within the floor's own spread. One CPU thread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

LOG_EVERY = 10
BATCH = 16


def _gpt2() -> tuple[torch.nn.Module, list[dict[str, torch.Tensor]]]:
    """The tiny model both frameworks train: a 2-layer GPT-2 from a config, on fixed random tokens."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    vocab, seq = 32, 32
    config = GPT2Config(
        vocab_size=vocab, n_positions=seq, n_embd=64, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
    )
    data = torch.randint(0, vocab, (1024, seq), generator=torch.Generator().manual_seed(0))
    return GPT2LMHeadModel(config), [{"input_ids": row, "labels": row} for row in data]


def _hf_round(steps: int, callback: Any, out: Path) -> float:
    from transformers import PrinterCallback, Trainer, TrainingArguments

    model, dataset = _gpt2()
    args = TrainingArguments(
        output_dir=str(out),
        run_name="bench",
        max_steps=steps,
        per_device_train_batch_size=BATCH,
        logging_steps=LOG_EVERY,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        logging_nan_inf_filter=False,
    )
    callbacks = [callback] if callback is not None else []
    trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=callbacks)
    trainer.remove_callback(
        PrinterCallback
    )  # HF prints every log to stdout without tqdm: keep the table clean
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0


def _lightning_round(steps: int, callback: Any, out: Path) -> float:
    import lightning.pytorch as pl

    class Module(pl.LightningModule):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
            loss: torch.Tensor = self.model(**batch).loss
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(self.parameters(), lr=5e-5)

    model, dataset = _gpt2()
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)
    trainer = pl.Trainer(
        default_root_dir=str(out),
        max_steps=steps,
        log_every_n_steps=LOG_EVERY,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback] if callback is not None else [],
    )
    module = Module(model)
    t0 = time.perf_counter()
    trainer.fit(module, loader)
    return time.perf_counter() - t0


def _timed(callback: Any, spent: list[float]) -> Any:
    """The callback with every hook timed (instance attributes: both frameworks look hooks up by name)."""
    for name in dir(callback):
        if name.startswith("on_") or name in ("setup", "teardown", "_logged", "_saved"):
            hook = getattr(callback, name)

            def timed(*args: Any, _hook: Any = hook, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return _hook(*args, **kwargs)
                finally:
                    spent.append(time.perf_counter() - t0)

            setattr(callback, name, timed)
    return callback


def _compare(
    name: str, round_fn: Callable[[int, Any, Path], float], make: Callable[[], Any], rounds: int, steps: int
) -> None:
    bare: list[float] = []
    with_cb: list[float] = []
    inside: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        round_fn(LOG_EVERY, make(), Path(tmp, "warm"))  # imports, first-call allocations
        for i in range(rounds):
            bare.append(round_fn(steps, None, Path(tmp, f"bare{i}")))
            spent: list[float] = []
            with_cb.append(round_fn(steps, _timed(make(), spent), Path(tmp, f"cb{i}")))
            inside.append(sum(spent) / with_cb[-1])
    floor, ours = statistics.median(bare), statistics.median(with_cb)
    print(f"| {name}: step, bare trainer (floor) | {floor / steps * 1e3:.2f} ms |")
    print(f"| {name}: step, with TermmonCallback | {ours / steps * 1e3:.2f} ms |")
    print(
        f"| {name}: slowdown (median of {rounds} rounds of {steps} steps) | {100 * (ours / floor - 1):+.2f} % |"
    )
    print(
        f"| {name}: time inside the callback's hooks (median share) | {100 * statistics.median(inside):.2f} % |"
    )
    print(
        f"| {name}: spread of the floor itself (max-min)/median | {100 * (max(bare) - min(bare)) / floor:.1f} % |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--only", choices=("hf", "lightning"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"logging every {LOG_EVERY} steps in both; CPU, 1 thread\n")
    print("| measure | value |\n|---|---|")
    if args.only in (None, "hf"):
        from termmon.integrations.hf import TermmonCallback as HFCallback

        _compare("HF Trainer, GPT-2 (2x64)", _hf_round, HFCallback, args.rounds, args.steps)
    if args.only in (None, "lightning"):
        from termmon.integrations.lightning import TermmonCallback as LitCallback

        _compare(
            "Lightning, GPT-2 (2x64)",
            _lightning_round,
            lambda: LitCallback(run_name="bench"),
            args.rounds,
            args.steps,
        )


if __name__ == "__main__":
    main()
