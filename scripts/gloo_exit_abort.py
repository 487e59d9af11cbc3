"""How often a two-rank gloo job dies of SIGABRT as it exits, by how each rank ends.

torch 2.13's gloo threads free a finished collective's tensors themselves, which takes the GIL; a rank
that exits just after its last collective can get there while Python is finalizing, and the C++ runtime
then aborts the rank ("terminate called without an active exception"). This is torch's, not termmon's:
it needs no termmon at all. tests/integration_helpers.py's ``release_process_group`` is the cure the
DDP tests use, and this script is the evidence for it.

    python scripts/gloo_exit_abort.py --runs 30 allreduce allreduce+destroy ddp+destroy ddp+free+destroy
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import subprocess
import sys

ENDINGS = ("allreduce", "allreduce+destroy", "ddp", "ddp+destroy", "ddp+free+destroy")


def run_rank(rank: int, port: int, ending: str) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    parts = ending.split("+")
    model = None
    if "ddp" in parts:
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 1))
        for _ in range(16):
            model(torch.randn(4, 8)).sum().backward()
    else:
        for _ in range(4):
            dist.all_reduce(torch.zeros(1))
    if "free" in parts:
        model = None
        gc.collect()
    if "destroy" in parts:
        dist.destroy_process_group()


def one_job(ending: str) -> bool:
    """Whether a fresh two-rank job with this ending exited cleanly."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import sys, torch.multiprocessing as mp; sys.path.insert(0, sys.argv[1]);"
        "from gloo_exit_abort import run_rank; mp.spawn(run_rank, args=(int(sys.argv[2]), sys.argv[3]), nprocs=2)"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, here, str(port), ending],
        capture_output=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endings", nargs="*", choices=ENDINGS, default=list(ENDINGS))
    parser.add_argument("--runs", type=int, default=30, help="jobs per ending (default 30)")
    args = parser.parse_args()
    for ending in args.endings:
        aborted = 0
        for i in range(args.runs):
            aborted += not one_job(ending)
            print(f"\r{ending}: {aborted} of {i + 1} died", end="", file=sys.stderr, flush=True)
        print(f"\r{ending}: {aborted} of {args.runs} jobs died at exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
