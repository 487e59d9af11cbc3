"""Write tests/data/{wandb,mlflow,trackio} with the real trackers: tiny CPU trainings, no network.

Run it in a separate virtual environment, never the project's (the trackers are big and the monitor
must not need them):

    python3 -m venv /tmp/tracker-venv
    /tmp/tracker-venv/bin/pip install torch==2.13.0          # first, alone, pinned
    /tmp/tracker-venv/bin/pip install wandb==0.31.0 mlflow==3.17.2 trackio==0.43.0
    /tmp/tracker-venv/bin/python scripts/make_tracker_fixtures.py [--only wandb,mlflow,trackio]

Each tracker gets a healthy run, a diverged one (a learning rate large enough to reach NaN, then Inf
logged on purpose so both encodings are in the files) and, where the tracker records it, a crashed
one (an exception inside the run). W&B runs offline; MLflow writes both of its stores (the file
store needs MLFLOW_ALLOW_FILE_STORE=true since MLflow 3); trackio writes its SQLite database under
TRACKIO_DIR. Each training runs in its own subprocess so a tracker's global state never leaks into
the next. The versions used are written to tests/data/README.md by hand (see its tracker section).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.metadata
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
TRACKERS = ("wandb", "mlflow", "trackio")
STEPS = 30


def _train(log, lr: float, crash_at: int | None = None, steps: int = STEPS) -> None:  # type: ignore[no-untyped-def]
    """A linear regression on synthetic data; ``log(step, metrics)`` after each optimizer step."""
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.randn(4, 1, generator=g) + 0.1 * torch.randn(64, 1, generator=g)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(steps):
        if crash_at is not None and step == crash_at:
            raise RuntimeError(f"synthetic crash at step {step}")
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        opt.step()
        metrics = {"train/loss": loss.item(), "train/grad_norm": norm.item(), "train/lr": lr}
        if step == steps - 1 and math.isnan(loss.item()):
            metrics["train/grad_norm"] = math.inf  # Inf as well as NaN, so both encodings appear
        if step % 10 == 9:
            metrics["epoch"] = step // 10
            metrics["val_loss"] = metrics["train/loss"] * 1.1
        log(step, metrics)


RUNS = {"healthy": (0.05, None), "diverged": (5.0, None), "crashed": (0.05, 20)}
#: A W&B run long enough (> 32 KiB) that its log spans blocks and records cross block boundaries.
LONG_STEPS = 160


# --- W&B offline -------------------------------------------------------------------------------------
def wandb_run(root: str, kind: str) -> None:
    import wandb

    lr, crash_at = RUNS.get(kind, (0.05, None))
    settings = wandb.Settings(
        x_disable_stats=True, x_disable_meta=True, console="off", disable_git=True, x_save_requirements=False
    )
    run = wandb.init(
        mode="offline",
        dir=root,
        project="fixtures",
        name=kind,
        config={"lr": lr, "optimizer": "SGD"},
        settings=settings,
    )

    if kind == "healthy":
        run.config.update({"batch_size": 64})  # a config record after init

    def log(step: int, metrics: dict[str, float]) -> None:
        extra = {}
        if "val_loss" in metrics:  # a nested dict (W&B names it eval.acc) and a text value, not series
            extra = {"eval": {"acc": 1 / (1 + metrics["val_loss"])}, "phase": "validation"}
        run.log({**metrics, **extra}, step=step)

    try:
        if kind == "long":
            _train(lambda step, m: run.log({"train/loss": m["train/loss"]}, step=step), lr, steps=LONG_STEPS)
        else:
            _train(log, lr, crash_at)
    except RuntimeError:
        run.finish(exit_code=1)
        return
    run.finish()


def make_wandb(root: Path) -> None:
    base = _fresh(root / "wandb")
    for kind in [*RUNS, "long"]:
        _child("wandb_run", str(base), kind, env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    for path in sorted(base.rglob("*")):
        # Only the .wandb log is read; drop the rest (debug logs, symlinks, empty files/).
        if path.is_symlink() or (path.is_file() and path.suffix != ".wandb"):
            path.unlink()
    for path in sorted(base.rglob("*"), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


# --- MLflow ------------------------------------------------------------------------------------------
def mlflow_run(uri: str, kind: str) -> None:
    import mlflow

    lr, crash_at = RUNS[kind]
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("fixtures")
    try:
        with mlflow.start_run(run_name=kind):
            mlflow.log_params({"lr": lr, "optimizer": "SGD"})
            mlflow.set_tag("purpose", "termmon fixture")
            _train(lambda step, m: mlflow.log_metrics(m, step=step), lr, crash_at)
    except RuntimeError:
        pass  # start_run's context manager has marked the run FAILED


def make_mlflow(root: Path) -> None:
    base = _fresh(root / "mlflow")
    file_store = base / "file_store"
    file_store.mkdir()
    db = base / "sqlite" / "mlflow.db"
    db.parent.mkdir()
    for kind in RUNS:
        _child("mlflow_run", (file_store / "mlruns").as_uri(), kind, env={"MLFLOW_ALLOW_FILE_STORE": "true"})
        _child("mlflow_run", f"sqlite:///{db}", kind, env={})
    shutil.rmtree(file_store / "mlruns" / ".trash", ignore_errors=True)
    for artifacts in (file_store / "mlruns").glob("*/*/artifacts"):
        shutil.rmtree(artifacts)
    _pack(db)


# --- trackio -----------------------------------------------------------------------------------------
def trackio_run(root: str, kind: str) -> None:
    import trackio

    lr, crash_at = RUNS[kind]
    trackio.init(project="fixtures", name=kind, config={"lr": lr, "optimizer": "SGD"})
    # trackio keeps no run status: the crash shows only as the run stopping.
    with contextlib.suppress(RuntimeError):
        _train(lambda step, m: trackio.log(m, step=step), lr, crash_at)
    trackio.finish()


def make_trackio(root: Path) -> None:
    base = _fresh(root / "trackio")
    for kind in RUNS:
        _child("trackio_run", str(base), kind, env={"TRACKIO_DIR": str(base), "HF_HUB_OFFLINE": "1"})
    _pack(next(base.glob("*.db")))
    for path in sorted(base.iterdir()):
        if path.is_dir():
            shutil.rmtree(path)  # media, trackio's lock files
        elif not path.name.endswith(".db.gz"):
            path.unlink()


# --- plumbing ----------------------------------------------------------------------------------------
def _pack(db: Path) -> None:
    """Fold the WAL into the file, drop free pages, gzip: the tracker's rows and schema, ~30x smaller
    (an MLflow 3 database is ~1 MB of empty tables). Tests unpack it into a temporary directory."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    with (
        open(db, "rb") as src,
        gzip.GzipFile(db.with_name(db.name + ".gz"), "wb", 9, mtime=0) as dst,
    ):
        shutil.copyfileobj(src, dst)
    db.unlink()


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _child(function: str, *args: str, env: dict[str, str]) -> None:
    """Run ``function(*args)`` of this script in a fresh interpreter, in a scratch working directory
    (MLflow puts a sqlite store's artifacts under the cwd)."""
    here = str(Path(__file__).resolve().parent)
    code = f"import sys; sys.path.insert(0, {here!r}); import make_tracker_fixtures as m; m.{function}(*sys.argv[1:])"
    with tempfile.TemporaryDirectory() as cwd:
        subprocess.run([sys.executable, "-c", code, *args], check=True, env={**os.environ, **env}, cwd=cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(TRACKERS), help="comma-separated: " + ", ".join(TRACKERS))
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args()
    for name in args.only.split(","):
        globals()[f"make_{name}"](args.out)
    for package in ("torch", "wandb", "mlflow", "trackio"):
        print(f"{package}=={importlib.metadata.version(package)}")


if __name__ == "__main__":
    main()
