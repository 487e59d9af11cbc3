"""``model_collapse``: seed 003's criteria on generated-token statistics, or the producer's own verdict."""

from __future__ import annotations

import numpy as np

from termmon.analysis.alerts.config import ModelCollapseConfig
from termmon.analysis.alerts.criteria import CriteriaDetector, Criterion
from termmon.analysis.alerts.episodes import EpisodeTracker
from termmon.analysis.alerts.model import Severity
from termmon.analysis.alerts.points import value_at
from termmon.model.run import Run

_TOTALS = {"collapse/unique_tokens": "collapse/total_tokens", "tokens/unique_tokens": "tokens/total_tokens"}


def _total(run: Run, unique_metric: str, rows: np.ndarray) -> np.ndarray:
    total = value_at(run, _TOTALS[unique_metric], rows)
    if unique_metric == "collapse/unique_tokens":  # seed 003 logs the count with tokens/* beside it
        missing = np.isnan(total)
        total[missing] = value_at(run, "tokens/total_tokens", rows[missing])
    return total


def _low_diversity(metric: str, cfg: ModelCollapseConfig) -> Criterion:
    def flag(run: Run, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        return (values < cfg.min_unique_tokens) & (_total(run, metric, rows) >= cfg.min_total_tokens)

    def reason(run: Run, row: int, value: float) -> str:
        total = _total(run, metric, np.array([row]))[0]
        return f"only {value:,.0f} unique tokens in {total:,.0f} (< {cfg.min_unique_tokens} in {cfg.min_total_tokens}+)"

    return Criterion(metric, flag, reason)


def _eos_counted(cfg: ModelCollapseConfig) -> Criterion:
    def ratio(run: Run, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            eos: np.ndarray = values / value_at(run, "tokens/total_tokens", rows)
        return eos

    def flag(run: Run, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        return ratio(run, rows, values) > cfg.max_eos_ratio

    def reason(run: Run, row: int, value: float) -> str:
        share = ratio(run, np.array([row]), np.array([value]))[0]
        return f"EOS is {share:.0%} of tokens (> {cfg.max_eos_ratio:.0%})"

    return Criterion("tokens/eos_count", flag, reason)


COLLAPSE_ADVICE = (
    "check the targets and the loss masking (padding counted as a target?), the sampling temperature, "
    "and the lr"
)
#: How much of a logged sample a message quotes.
SAMPLE_CHARS = 120


def sample_text(run: Run, row: int) -> str:
    """The generation sample (or most common token) logged with the record at ``row``, for the message."""
    names = [n for n in run.texts if n.startswith(("collapse/", "generation/", "tokens/"))]
    names.sort(key=lambda n: ("sample" not in n, n))
    for name in names:
        text = run.text_at(name, row)
        if text and name != "collapse/collapse_reason":
            quoted = text if len(text) <= SAMPLE_CHARS else text[: SAMPLE_CHARS - 1] + "…"
            return f"{name}: {quoted!r}"
    return ""


def model_collapse_detector(config: ModelCollapseConfig) -> CriteriaDetector:
    cfg = config
    criteria = [
        Criterion(
            "collapse/is_collapsed",
            lambda run, rows, values: values > 0,
            lambda run, row, value: "the trainer reports collapse (collapse/is_collapsed)",
        ),
        Criterion(
            "collapse/most_common_ratio",
            lambda run, rows, values: values > cfg.max_token_ratio,
            lambda run, row, value: (
                f"the most common token is {value:.0%} of outputs (> {cfg.max_token_ratio:.0%})"
            ),
        ),
        _low_diversity("collapse/unique_tokens", cfg),
        _low_diversity("tokens/unique_tokens", cfg),
        *(
            Criterion(
                name,
                lambda run, rows, values: values > 0,
                lambda run, row, value: "the samples are identical sequences",
            )
            for name in ("collapse/identical_sequences", "collapse/all_identical")
        ),
        Criterion(
            "collapse/eos_ratio",
            lambda run, rows, values: values > cfg.max_eos_ratio,
            lambda run, row, value: f"EOS is {value:.0%} of outputs (> {cfg.max_eos_ratio:.0%})",
        ),
        _eos_counted(cfg),
    ]
    tracker = EpisodeTracker(1, cfg.rearm_points)
    return CriteriaDetector(
        "model_collapse", Severity.CRITICAL, "model collapse", criteria, tracker, _collapse_context
    )


def _collapse_context(run: Run, row: int) -> str:
    sample = sample_text(run, row)
    return (f"logged {sample}; " if sample else "") + COLLAPSE_ADVICE
