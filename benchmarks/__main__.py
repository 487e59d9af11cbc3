"""Run every benchmark in turn (``make bench``); each prints a Markdown table for docs/performance.md.

Pass benchmark names to run only those: ``python -m benchmarks ingest alerts``.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    "ingest",
    "alerts",
    "tui",
    "live",
    "many",
    "startup",
    "first_touch",
    "alert_log",
    "first_frame",
    "logger",
    "diagnostics",
    "tfevents",
    "wandb",
    "mlflow_db",
    "remote",
    "integrations",
)


def main() -> int:
    chosen = sys.argv[1:] or list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for name in chosen:
        print(f"\n<!-- python -m benchmarks.bench_{name} -->", flush=True)
        failed |= subprocess.call([sys.executable, "-m", f"benchmarks.bench_{name}"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
