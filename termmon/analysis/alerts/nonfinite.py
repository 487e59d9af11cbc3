"""``nan_inf``: a NaN or ±Inf in any loss-like metric or the gradient norm, or the trainer's own flag.

All watched metrics share one episode: a diverged run turns loss, gradient norm and the flag non-finite
at once, and that is one event for the user, not three.
"""

from __future__ import annotations

import numpy as np

from termmon.analysis.alerts.base import Found, spot
from termmon.analysis.alerts.config import NanInfConfig
from termmon.analysis.alerts.episodes import EpisodeTracker
from termmon.analysis.alerts.model import Severity, fmt_value
from termmon.analysis.alerts.points import Cursor, Points, merge_flags
from termmon.format import NAN_INF_DETECTED
from termmon.model.run import Run
from termmon.roles import Role, is_loss_like, role_of

NONFINITE_ADVICE = (
    "usual causes: an lr too high (lower it, clip gradients), log(0) or a division by zero in the loss "
    "(add an eps), fp16 overflow (bf16 or a loss scaler), a NaN in the input batch"
)


def _watched(name: str) -> bool:
    return name == NAN_INF_DETECTED or role_of(name) == Role.GRAD_NORM or is_loss_like(name)


class NanInfDetector:
    def __init__(self, config: NanInfConfig) -> None:
        self.cursor = Cursor()
        self.tracker = EpisodeTracker(1, config.rearm_points)
        self.watched: list[str] = []
        self.metrics_seen = 0

    def update(self, run: Run, now: float) -> list[Found]:
        if len(run.metrics) != self.metrics_seen:  # metrics are only ever added: check the new names
            self.watched += [n for n in list(run.metrics)[self.metrics_seen :] if _watched(n)]
            self.metrics_seen = len(run.metrics)
        taken: list[tuple[Points, np.ndarray]] = []
        for name in self.watched:
            points = self.cursor.take(run, name)
            if points is not None:
                bad = points.value > 0 if name == NAN_INF_DETECTED else ~np.isfinite(points.value)
                taken.append((points, bad))
        merged = merge_flags(run, [(p.rows, bad) for p, bad in taken])
        found = []
        for i in self.tracker.feed(merged.flagged):
            at = spot(merged, i)
            culprits = sorted(  # the loss before the gradients computed from it
                (p.name == NAN_INF_DETECTED, not is_loss_like(p.name), p.name, float(p.value[j]))
                for p, bad in taken
                for j in [int(np.searchsorted(p.rows, at.row))]
                if j < len(p.rows) and p.rows[j] == at.row and bad[j]
            )
            is_flag, _, metric, value = culprits[0]
            if is_flag:
                message = f"the trainer flagged NaN/Inf values ({metric}) at {at.where}"
            else:
                message = f"{metric} is {fmt_value(value)} at {at.where}"
                others = [name for flag, _, name, _ in culprits[1:] if not flag]
                if others:
                    message += f" (also non-finite: {', '.join(others)})"
            message += f"; {NONFINITE_ADVICE}"
            found.append(at.found("nan_inf", Severity.CRITICAL, message, metric, value))
        return found
