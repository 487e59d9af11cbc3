"""The alerts panel with many alerts: what one more costs to show, against wrapping them all again.

    python -m benchmarks.bench_alert_log [--counts 100 1000] [--repeats 20]

The panel shows problems before news, newest first, so a new alert can land anywhere in it, and the
whole panel is laid out again for each batch. Each alert is wrapped once for the panel's width and its
lines kept: laying out again is a sort and a list of lines. The floor is what a log widget that renders
its entries again (Textual's RichLog after ``clear``) pays for the same layout: wrapping every alert
again. In-process, a real Textual app holding only the panel (``App.run_test``, 120x35), with alerts as
long as the alert engine's (~150 characters, three lines at the panel's width); median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from textual.app import App, ComposeResult

from termmon.views.colors import RunColors
from termmon.views.widgets.alert_log import AlertLog

MESSAGE = (
    "nan_inf: train_loss is NaN at step {i}; usual causes: an lr too high (lower it, clip gradients), "
    "log(0) or a division by zero in the loss"
)


class _Host(App[None]):
    CSS = "AlertLog { width: 46; height: 12; }"

    def compose(self) -> ComposeResult:
        yield AlertLog(RunColors())


async def _measure(count: int, repeats: int) -> tuple[float, float]:
    app = _Host()
    async with app.run_test(size=(120, 35)) as pilot:
        log = app.query_one(AlertLog)
        for i in range(count):
            log.note(MESSAGE.format(i=i))
        await pilot.pause()
        log._show()  # every alert wrapped once, as the panel holds them after they came in
        width = log.scrollable_content_region.width
        one_more, rewrap = [], []
        for r in range(repeats):
            t0 = time.perf_counter()
            log.note(MESSAGE.format(i=count + r))
            log._show()
            one_more.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for text in log.entries:
                log._wrap(text, width)
            rewrap.append(time.perf_counter() - t0)
        await pilot.pause()
    return statistics.median(one_more), statistics.median(rewrap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"median of {args.repeats}\n")
    print("| alerts held | one more alert shown | floor: wrapping them all again | ratio |")
    print("|---:|---:|---:|---:|")
    for count in args.counts:
        one_more, rewrap = asyncio.run(_measure(count, args.repeats))
        print(f"| {count:,} | {one_more * 1e3:.2f} ms | {rewrap * 1e3:.1f} ms | {one_more / rewrap:.3f} |")


if __name__ == "__main__":
    main()
