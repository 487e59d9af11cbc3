"""profile-batch's Markdown report: seed 001's table and a recommendation that states its rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from termmon.tools.profile_batch import ProfileResult

#: Seed 001's rule: use at most 70-80% of device memory, leaving room for other processes and spikes.
HEADROOM_LOW: Final = 0.70
HEADROOM_HIGH: Final = 0.80
#: A final loss this much above the best one among the sizes that fit is worth a remark.
_LOSS_GAP: Final = 0.10
_DASH: Final = "-"


def recommend(fits: Sequence[ProfileResult]) -> ProfileResult:
    """Best throughput among the sizes that fit; time per epoch stands in when throughput is unknown."""
    if all(r.samples_per_second is not None for r in fits):
        return max(fits, key=lambda r: r.samples_per_second or 0.0)
    return min(fits, key=lambda r: r.time_per_epoch or math.inf)


def report_markdown(target: str, epochs: int, results: Sequence[ProfileResult]) -> str:
    on_gpu = any(r.on_gpu for r in results)
    memory_header = "GPU Memory" if on_gpu else "Peak RSS"
    device = next((r.device for r in results if r.on_gpu), next((r.device for r in results if r.device), "?"))
    lines = [
        f"# Batch Size Profile: `{target}`",
        "",
        f"{epochs} epoch(s) per batch size on {device}, each batch size in a fresh process. {_timing_note(results)}",
        "",
        f"| Batch Size | Time/Epoch | {memory_header} | Samples/Sec | Final Train Loss | Final Test Loss | Status |",
        "|------------|------------|------------|-------------|------------------|-----------------|--------|",
        *(_row(r) for r in results),
    ]
    failures = [r for r in results if not r.ok]
    if failures:
        lines += ["", "## Failures", ""]
        lines += [
            f"- **{r.batch_size:,}** ({r.status}): {_one_line(r.error or 'no message')}" for r in failures
        ]
    lines += ["", "## Recommendation", "", *_recommendation(results, on_gpu)]
    return "\n".join(lines) + "\n"


def _timing_note(results: Sequence[ProfileResult]) -> str:
    sources = {r.time_source for r in results if r.ok}
    if sources == {"function"}:
        return "Time/Epoch is the `time_per_epoch` the function returned."
    note = "Time/Epoch is the function's wall time divided by the epochs, set-up and warm-up included"
    if "function" in sources:
        return note + " (or the `time_per_epoch` it returned, where it did)."
    return note + "; return `time_per_epoch` from the function to time training alone."


def _row(r: ProfileResult) -> str:
    cells = [
        f"{r.batch_size:,}",
        _seconds(r.time_per_epoch),
        _bytes(r.peak_memory_bytes),
        _DASH if r.samples_per_second is None else f"{r.samples_per_second:,.0f}",
        _loss(r.final_train_loss),
        _loss(r.final_test_loss),
        r.status,
    ]
    return "| " + " | ".join(cells) + " |"


def _recommendation(results: Sequence[ProfileResult], on_gpu: bool) -> list[str]:
    fits = [r for r in results if r.ok]
    if not fits:
        smallest = min(r.batch_size for r in results)
        return [f"No batch size completed. Try sizes below {smallest:,}, and see the failures above."]
    best = recommend(fits)
    lines = [f"**Optimal batch size: {best.batch_size:,}**", ""]
    if best.samples_per_second is not None:
        lines.append(f"- Best throughput: {best.samples_per_second:,.0f} samples/sec")
    else:
        lines.append(
            "- Shortest time per epoch; throughput unknown because the function returned no `samples_per_epoch` "
            "(the two agree when an epoch covers the same data at every batch size)"
        )
    lines.append(f"- Time per epoch: {_seconds(best.time_per_epoch)}")
    lines.append(f"- {'GPU memory usage' if on_gpu else 'Peak RSS'}: {_memory_share(best)}")
    if best.final_test_loss is not None:
        lines.append(f"- Final test loss: {_loss(best.final_test_loss)}")
    if best.final_train_loss is not None:
        lines.append(f"- Final train loss: {_loss(best.final_train_loss)}")
    lines += ["", *_headroom(best, fits, on_gpu), *_loss_remark(best, fits)]
    return lines


def _headroom(best: ProfileResult, fits: Sequence[ProfileResult], on_gpu: bool) -> list[str]:
    rule = (
        f"Memory headroom rule: aim for {HEADROOM_LOW:.0%}-{HEADROOM_HIGH:.0%} of device memory, leaving room "
        "for other processes, allocator fragmentation and longer batches than the ones profiled."
    )
    if not on_gpu:
        return [
            rule,
            "",
            "No CUDA device was used, so what was measured is the peak resident memory (RSS) of each worker "
            "process, Python and its libraries included; apply the rule to the machine's RAM, and profile again "
            "on the GPU before choosing a size for it.",
        ]
    share = _share(best)
    if share is None or share <= HEADROOM_HIGH:
        return [rule]
    within = [r for r in fits if (s := _share(r)) is not None and s <= HEADROOM_HIGH]
    note = f"Batch size {best.batch_size:,} uses {share:.0%} of device memory, above the {HEADROOM_HIGH:.0%} mark."
    if within:
        safe = recommend(within)
        note += f" The best within it is {safe.batch_size:,} ({_memory_share(safe)}"
        if safe.samples_per_second is not None:
            note += f", {safe.samples_per_second:,.0f} samples/sec"
        note += ")."
    return [rule, "", note]


def _loss_remark(best: ProfileResult, fits: Sequence[ProfileResult]) -> list[str]:
    losses = [
        r.final_test_loss for r in fits if r.final_test_loss is not None and math.isfinite(r.final_test_loss)
    ]
    if best.final_test_loss is None or not losses:
        return []
    lowest = min(losses)
    if best.final_test_loss <= lowest + _LOSS_GAP * abs(lowest):
        return []
    return [
        "",
        f"The final test loss at {best.batch_size:,} ({_loss(best.final_test_loss)}) is more than "
        f"{_LOSS_GAP:.0%} above the best ({_loss(lowest)}): with a larger batch, consider scaling the "
        "learning rate before trusting the throughput win.",
    ]


def _share(r: ProfileResult) -> float | None:
    if r.peak_memory_bytes is None or not r.device_memory_bytes:
        return None
    return r.peak_memory_bytes / r.device_memory_bytes


def _memory_share(r: ProfileResult) -> str:
    share = _share(r)
    total = f" ({share:.0%} of {_bytes(r.device_memory_bytes)})" if share is not None else ""
    return _bytes(r.peak_memory_bytes) + total


def _seconds(value: float | None) -> str:
    if value is None:
        return _DASH
    return f"{value:.3g}s" if value < 10 else f"{value:.1f}s"


def _bytes(value: int | None) -> str:
    if value is None:
        return _DASH
    return f"{value / 1e9:.1f} GB" if value >= 1e9 else f"{value / 1e6:.0f} MB"


def _loss(value: float | None) -> str:
    return _DASH if value is None else f"{value:.4f}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
