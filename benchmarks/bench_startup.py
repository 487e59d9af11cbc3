"""Start-up import cost of the monitor against a bare Textual app (docs/performance.md, issue 15 item 2).

    python -m benchmarks.bench_startup [--runs 5]

Each line is a fresh interpreter; the best of ``--runs`` is kept (start-up noise only ever adds). The floor
is ``import textual.app``: the monitor cannot start faster than the framework it draws with. Also lists
which heavy libraries the import pulled in (none should: they load where a command needs them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

HEAVY = ("pandas", "matplotlib", "sklearn", "torch", "scipy")
TARGETS = (
    ("python, no import", "pass"),
    ("import textual.app (floor)", "import textual.app"),
    ("import termmon.views.app", "import termmon.views.app"),
)


def _best_wall(code: str, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def _heavy_loaded() -> list[str]:
    code = (
        f"import json, sys, termmon.views.app; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return list(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"Fresh interpreter per run, best of {args.runs}\n")
    print("| process | wall |\n|---|---:|")
    for label, code in TARGETS:
        print(f"| {label} | {_best_wall(code, args.runs) * 1e3:.0f} ms |")
    print(f"\nheavy libraries imported by termmon.views.app: {', '.join(_heavy_loaded()) or 'none'}")


if __name__ == "__main__":
    main()
