"""Seed 003's generation-health metrics, as dicts to pass straight to ``tm.step(**...)``.

Keys are already flattened (``collapse/most_common_ratio``) so they never clash with ``step``'s own
``loss`` argument: ``tm.step(loss=loss, **loss_breakdown(token_losses, mask))`` works. Each helper moves
its inputs to the host, so call it at its own cadence (seed 003: every 25-100 steps), not every step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch

#: Seed 003's collapse criteria.
DOMINANCE_RATIO = 0.7
MIN_UNIQUE_TOKENS = 10
MIN_TOKENS_FOR_DIVERSITY = 50
EOS_RATIO = 0.8


def _rows(ids: torch.Tensor | Sequence[Sequence[int]], pad_id: int | None) -> list[list[int]]:
    rows = ids.detach().cpu().tolist() if isinstance(ids, torch.Tensor) else [list(r) for r in ids]
    if rows and not isinstance(rows[0], list):
        rows = [rows]
    return [[t for t in row if t != pad_id] for row in rows]


def collapse_metrics(
    generated: torch.Tensor | Sequence[Sequence[int]],
    eos_id: int | None = None,
    pad_id: int | None = None,
    decode: Callable[[int], str] | None = None,
) -> dict[str, Any]:
    """Is the model emitting one token, a handful of tokens, the same sequence, or only EOS?"""
    rows = _rows(generated, pad_id)
    tokens = [t for row in rows for t in row]
    out: dict[str, Any] = {"collapse/total_tokens": len(tokens)}
    if not tokens:
        out.update({"collapse/is_collapsed": True, "collapse/collapse_reason": "empty_generations"})
        return out
    counts = Counter(tokens)
    top, top_count = counts.most_common(1)[0]
    ratio = top_count / len(tokens)
    eos_ratio = counts.get(eos_id, 0) / len(tokens) if eos_id is not None else 0.0
    reasons = []
    if ratio > DOMINANCE_RATIO:
        reasons.append("single_token_dominance")
    if len(tokens) >= MIN_TOKENS_FOR_DIVERSITY and len(counts) < MIN_UNIQUE_TOKENS:
        reasons.append("low_diversity")
    if len(rows) > 1 and all(row == rows[0] for row in rows):
        reasons.append("identical_sequences")
    if eos_ratio > EOS_RATIO:
        reasons.append("excessive_eos")
    out.update(
        {
            "collapse/is_collapsed": bool(reasons),
            "collapse/collapse_reason": ",".join(reasons) or "none",
            "collapse/most_common_token": top,
            "collapse/most_common_ratio": ratio,
            "collapse/unique_tokens": len(counts),
            "collapse/token_diversity": len(counts) / len(tokens),
            "collapse/eos_ratio": eos_ratio,
            "collapse/avg_length": len(tokens) / len(rows),
        }
    )
    if decode is not None:
        out["collapse/most_common_token_text"] = decode(top)
    return out


def token_stats(
    input_ids: torch.Tensor,
    vocab_size: int | None = None,
    eos_id: int | None = None,
    pad_id: int | None = None,
    answer_mask: torch.Tensor | None = None,
) -> dict[str, float]:
    """Batch token statistics; ``answer_mask`` (same shape, true on answer tokens) adds the answer ones."""
    ids = input_ids.detach()
    total = ids.numel()
    valid = ids[ids != pad_id] if pad_id is not None else ids.reshape(-1)
    unique = int(torch.unique(valid).numel())
    out: dict[str, float] = {
        "tokens/total_tokens": float(total),
        "tokens/unique_tokens": float(unique),
        "tokens/pad_ratio": float((ids == pad_id).sum()) / total if pad_id is not None and total else 0.0,
    }
    if vocab_size:
        out["tokens/unique_token_ratio"] = unique / vocab_size
    if eos_id is not None:
        out["tokens/eos_count"] = float((ids == eos_id).sum())
    if answer_mask is not None:
        mask = answer_mask.detach().bool()
        answer = ids[mask]
        rows = mask.reshape(mask.shape[0], -1) if mask.ndim > 1 else mask.reshape(1, -1)
        out["tokens/answer_length"] = float(rows.sum(dim=1).float().mean())
        out["tokens/answer_diversity_ratio"] = (
            float(torch.unique(answer).numel()) / answer.numel() if answer.numel() else 0.0
        )
    return out


def loss_breakdown(
    token_losses: torch.Tensor, mask: torch.Tensor | None = None, high_loss_threshold: float | None = None
) -> dict[str, float]:
    """Per-token loss ``(batch, seq)`` split into first and later answer tokens, spread and outliers.

    ``high_loss_threshold`` defaults to mean + 2 std of the batch's token losses.
    """
    losses = token_losses.detach().float()
    losses = losses.reshape(1, -1) if losses.ndim == 1 else losses.reshape(losses.shape[0], -1)
    valid = (
        torch.ones_like(losses, dtype=torch.bool)
        if mask is None
        else mask.detach().bool().reshape(losses.shape)
    )
    flat = losses[valid]
    if flat.numel() == 0:
        return {}
    first_pos = valid.float().argmax(dim=1)
    has_any = valid.any(dim=1)
    first = losses[torch.arange(losses.shape[0])[has_any], first_pos[has_any]]
    later_mask = valid.clone()
    later_mask[torch.arange(losses.shape[0])[has_any], first_pos[has_any]] = False
    later = losses[later_mask]
    mean, std = float(flat.mean()), float(flat.std()) if flat.numel() > 1 else 0.0
    threshold = mean + 2 * std if high_loss_threshold is None else high_loss_threshold
    first_mean = float(first.mean())
    later_mean = float(later.mean()) if later.numel() else float("nan")
    return {
        "loss/total": mean,
        "loss/first_token": first_mean,
        "loss/later_tokens": later_mean,
        "loss/std": std,
        "loss/max": float(flat.max()),
        "loss/min": float(flat.min()),
        "loss/high_loss_token_ratio": float((flat > threshold).float().mean()),
        "loss/first_vs_later_ratio": first_mean / later_mean
        if later.numel() and later_mean
        else float("nan"),
    }
