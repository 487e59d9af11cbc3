"""Write tests/data/ fixtures with the real libraries: tiny CPU trainings, synthetic data, no downloads.

Run it in a separate virtual environment, never the project's (the libraries are big and the monitor
must not need them):

    python3 -m venv /tmp/fixtures-venv
    /tmp/fixtures-venv/bin/pip install torch==2.13.0
    /tmp/fixtures-venv/bin/pip install tensorboard==2.21.0 transformers==5.24.0 accelerate==1.15.0 \\
        lightning==2.6.6 keras==3.15.1
    /tmp/fixtures-venv/bin/python scripts/make_format_fixtures.py [--only tensorboard,hf,lightning,keras]

Each library gets a healthy run and a diverged one (a learning rate large enough to reach NaN), plus
the layouts the readers must handle (a restarted TensorBoard run, Lightning's in-place CSV rewrite).
Weights and optimizer states are deleted after each run: the tests read logs, and the fixtures stay a
few hundred KB. The versions used are written to tests/data/VERSIONS.txt.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
LIBRARIES = ("tensorboard", "hf", "lightning", "keras")
_VERSIONED = ("torch", "tensorboard", "transformers", "accelerate", "lightning", "keras", "numpy")


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _regression_data(n: int = 64, dim: int = 4, seed: int = 0):  # type: ignore[no-untyped-def]
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    y = x @ torch.randn(dim, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    return x, y


# --- TensorBoard (torch.utils.tensorboard.SummaryWriter) ---------------------------------------------
def _tb_train(writer, steps: range, lr: float, model=None):  # type: ignore[no-untyped-def]
    import torch

    x, y = _regression_data()
    model = model or torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for step in steps:
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        opt.step()
        writer.add_scalar("train/loss", loss.item(), step)
        writer.add_scalar("train/grad_norm", norm.item(), step)
        # Newer writers encode scalars as tensors (the "scalars" plugin); torch does on request.
        writer.add_scalar("train/lr", lr, step, new_style=True)
    return model


def make_tensorboard(root: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    base = _fresh(root / "tensorboard")
    with SummaryWriter(base / "healthy") as writer:
        _tb_train(writer, range(40), lr=0.05)
        writer.add_hparams({"lr": 0.05, "optimizer": "SGD"}, {"hparam/final_loss": 0.01})
    with SummaryWriter(base / "diverged") as writer:
        _tb_train(writer, range(40), lr=5.0)
    # A restart from a checkpoint at step 20 that re-logs steps 20..39 into a second events file
    # (steps going backwards), and one that tells TensorBoard with purge_step (SessionLog START).
    for name, purge in (("restarted", None), ("restarted_purge_step", 20)):
        with SummaryWriter(base / name) as writer:
            model = _tb_train(writer, range(30), lr=0.05)
        _wait_next_second()  # event file names carry the time in seconds: keep them distinct
        with SummaryWriter(base / name, purge_step=purge) as writer:
            _tb_train(writer, range(20, 40), lr=0.05, model=model)


def _wait_next_second() -> None:
    import time

    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.05)


# --- Hugging Face Trainer ----------------------------------------------------------------------------
def make_hf(root: Path) -> None:
    base = _fresh(root / "hf")
    _hf_run(base / "healthy", lr=5e-3)
    _hf_run(base / "diverged", lr=1e6)


def _hf_run(out: Path, lr: float) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=32, n_positions=16, n_embd=8, n_layer=1, n_head=1)
    model = GPT2LMHeadModel(config)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 32, (48, 8), generator=g)
    train = [{"input_ids": row, "labels": row} for row in ids[:40]]
    evals = [{"input_ids": row, "labels": row} for row in ids[40:]]
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=30,
        per_device_train_batch_size=4,
        learning_rate=lr,
        logging_steps=5,
        eval_strategy="steps",
        eval_steps=10,
        save_strategy="steps",
        save_steps=30,
        report_to=["tensorboard"],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evals)
    trainer.train()
    trainer.evaluate()  # the final evaluate: HF writes it to a second events file
    trainer.save_state()
    _keep_logs(
        out, keep=("trainer_state.json", "events.out.tfevents", "all_results.json", "eval_results.json")
    )


def _keep_logs(out: Path, keep: tuple[str, ...]) -> None:
    """Delete weights, optimizer states and tokenizer files: only the logs are fixtures."""
    for path in sorted(out.rglob("*"), reverse=True):
        if path.is_file() and not path.name.startswith(keep):
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


# --- Lightning ---------------------------------------------------------------------------------------
def make_lightning(root: Path) -> None:
    base = _fresh(root / "lightning")
    _lightning_run(base / "csv", lr=0.05, tensorboard=False, snapshot=True)
    _lightning_run(base / "diverged", lr=50.0, tensorboard=False)
    _lightning_run(base / "tb", lr=0.05, tensorboard=True)


def _lightning_run(save_dir: Path, lr: float, *, tensorboard: bool, snapshot: bool = False) -> None:
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import Callback, LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    class Regressor(L.LightningModule):
        def __init__(self, lr: float) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    class CopyCsvBeforeRewrite(Callback):
        """Keeps metrics.csv as it was just before Lightning rewrote it in place with a new header."""

        def __init__(self) -> None:
            self.header = b""

        def on_train_batch_end(self, trainer, *args) -> None:  # type: ignore[no-untyped-def]
            path = Path(trainer.logger.log_dir) / "metrics.csv"
            if not path.exists():
                return
            data = path.read_bytes()
            header = data.split(b"\n", 1)[0]
            if (
                self.header
                and header != self.header
                and not (save_dir / "metrics.before_rewrite.snapshot").exists()
            ):
                shutil.copy(self._last, save_dir / "metrics.before_rewrite.snapshot")
            self.header = header
            self._last = save_dir / ".last.csv"
            self._last.write_bytes(data)

    torch.manual_seed(0)
    x, y = _regression_data(n=80)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:64], y[:64]), batch_size=8)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[64:], y[64:]), batch_size=8)
    logger = (TensorBoardLogger if tensorboard else CSVLogger)(save_dir, name="lightning_logs")
    callbacks: list[Callback] = [LearningRateMonitor(logging_interval="step")]
    copier = CopyCsvBeforeRewrite() if snapshot else None
    if copier:
        callbacks.append(copier)
    trainer = L.Trainer(
        max_epochs=3,
        logger=logger,
        callbacks=callbacks,
        log_every_n_steps=2,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Regressor(lr), loader, val)
    if copier:
        (save_dir / ".last.csv").unlink(missing_ok=True)


# --- Keras CSVLogger ---------------------------------------------------------------------------------
def make_keras(root: Path) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    base = _fresh(root / "keras")
    _keras_run(base / "healthy", lr=0.05)
    _keras_run(base / "diverged", lr=1e4)


def _keras_run(out: Path, lr: float) -> None:
    import keras
    import numpy as np

    out.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1)) + 0.1 * rng.normal(size=(128, 1))).astype("float32")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse", metrics=["mae"])
    model.fit(
        x,
        y,
        epochs=6,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[keras.callbacks.CSVLogger(str(out / "training.log"))],
    )


MAKERS = {"tensorboard": make_tensorboard, "hf": make_hf, "lightning": make_lightning, "keras": make_keras}


def write_versions(root: Path) -> None:
    lines = [f"python=={sys.version.split()[0]}"]
    for name in _VERSIONED:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    (root / "VERSIONS.txt").write_text(
        "# Written by scripts/make_format_fixtures.py: the libraries that wrote the fixtures.\n"
        + "\n".join(lines)
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(LIBRARIES), help="comma-separated: " + ", ".join(LIBRARIES)
    )
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args()
    for name in args.only.split(","):
        print(f"writing {name} fixtures", file=sys.stderr)
        MAKERS[name](args.out)
    write_versions(args.out)


if __name__ == "__main__":
    main()
