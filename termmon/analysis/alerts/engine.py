"""The alert engine: runs every enabled detector over what is new in a run, in record order, and keeps one
alert per episode, including against the alerts the trainer wrote itself.

Detectors hold per-run cursors and rolling state, so an update costs time proportional to the new points
and the TUI can call it on every refresh. When a run is re-read from the start (``run.generation``
changes) its state and alerts are dropped and rebuilt.

The trend detectors (:data:`TRENDS`) judge hundreds of points at a time, at a fixed numpy cost a call;
a caller that judges a live run often may leave them out of an update (``trends=False``) and bring
them in later. The trainer's alerts of a trend's kind then wait for the trend detector, so the one
alert kept per episode is the same however the calls were spread.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from pathlib import Path

from termmon.analysis.alerts.base import Detector, Found
from termmon.analysis.alerts.collapse import model_collapse_detector
from termmon.analysis.alerts.config import AlertConfig
from termmon.analysis.alerts.diagnostics import DiagnosticsDetector
from termmon.analysis.alerts.gradients import (
    ExplodingGradientsDetector,
    VanishingGradientsDetector,
    no_param_updates_detector,
)
from termmon.analysis.alerts.labels import label_out_of_range_detector
from termmon.analysis.alerts.loss import LossPlateauDetector, OverfittingDetector
from termmon.analysis.alerts.model import PRODUCER, Alert
from termmon.analysis.alerts.nonfinite import NanInfDetector
from termmon.analysis.alerts.producer import ProducerAlerts
from termmon.analysis.alerts.system import LowGpuUtilDetector, StalledDetector
from termmon.model.run import Run

#: Detectors over trends (their config section, which is also the kind they raise): judged in an
#: update with ``trends=True``. The rest (NaN, explosions, stalls, the trainer's own alerts) in every one.
TRENDS = frozenset({"vanishing_gradients", "loss_plateau", "overfitting", "low_gpu_util"})


def _detectors(config: AlertConfig) -> list[tuple[str, Detector]]:
    """Enabled detectors by config section, in the order their alerts rank at the same record."""
    factories: list[tuple[str, Callable[[], Detector]]] = [
        ("nan_inf", lambda: NanInfDetector(config.nan_inf)),
        ("exploding_gradients", lambda: ExplodingGradientsDetector(config.exploding_gradients)),
        ("vanishing_gradients", lambda: VanishingGradientsDetector(config.vanishing_gradients)),
        ("no_param_updates", lambda: no_param_updates_detector(config.no_param_updates)),
        ("model_collapse", lambda: model_collapse_detector(config.model_collapse)),
        ("label_out_of_range", lambda: label_out_of_range_detector(config.label_out_of_range)),
        ("loss_plateau", lambda: LossPlateauDetector(config.loss_plateau)),
        ("overfitting", lambda: OverfittingDetector(config.overfitting)),
        ("low_gpu_util", lambda: LowGpuUtilDetector(config.low_gpu_util)),
        ("diagnostics", lambda: DiagnosticsDetector(config.diagnostics)),
        ("producer", ProducerAlerts),
        ("stalled", lambda: StalledDetector(config.stalled)),
    ]
    return [(name, make()) for name, make in factories if getattr(config, name).enabled]


class _RunAlerts:
    def __init__(self, config: AlertConfig, generation: int) -> None:
        self.generation = generation
        self.detectors = _detectors(config)
        self.trends = frozenset(name for name, _ in self.detectors if name in TRENDS)
        self.alerts: list[Alert] = []
        self.last_by_kind: dict[str, Alert] = {}
        #: The trainer's alerts of a trend's kind, found while the trend detectors were left out.
        self.waiting: list[tuple[float, int, Found]] = []


class AlertEngine:
    """Alerts for any number of runs (keyed by ``run.path``), kept up to date by :meth:`update`."""

    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config or AlertConfig()
        self._runs: dict[Path, _RunAlerts] = {}

    def update(self, run: Run, now: float | None = None, *, trends: bool = True) -> list[Alert]:
        """The alerts raised by what is new in ``run`` since the last call (all of them on the first call,
        or after the run was re-read from its start: check :meth:`alerts_for` then). ``now`` (unix time,
        default the clock) is what ``stalled`` measures silence against. ``trends=False`` leaves the
        :data:`TRENDS` detectors for a later update, which judges what they missed.
        """
        now = _time.time() if now is None else now
        state = self._runs.get(run.path)
        if state is None or state.generation != run.generation:
            state = self._runs[run.path] = _RunAlerts(self.config, run.generation)
        found: list[tuple[float, int, Found]] = []
        for order, (name, detector) in enumerate(state.detectors):
            if not trends and name in TRENDS:
                continue
            try:
                found.extend((f.row, order, f) for f in detector.update(run, now))
            except Exception as exc:  # one detector failing on one run must not stop the others
                message = f"alert detector {type(detector).__name__} failed: {type(exc).__name__}: {exc}"
                if message not in run.errors:
                    run.errors.append(message)
        if trends:
            found, state.waiting = found + state.waiting, []
        else:
            state.waiting += [item for item in found if item[2].alert.kind in state.trends]
            found = [item for item in found if item[2].alert.kind not in state.trends]
        found.sort(key=lambda item: item[:2])
        new = [f.alert for _, _, f in found if self._keep(state, f.alert)]
        state.alerts.extend(new)
        return new

    def alerts_for(self, run: Run) -> list[Alert]:
        """Every alert of ``run`` so far, oldest first (empty before its first update)."""
        state = self._runs.get(run.path)
        return list(state.alerts) if state else []

    @property
    def alerts(self) -> list[Alert]:
        """Every alert of every run, run by run."""
        return [alert for state in self._runs.values() for alert in state.alerts]

    def forget(self, run: Run) -> None:
        self._runs.pop(run.path, None)

    def _keep(self, state: _RunAlerts, alert: Alert) -> bool:
        """One alert per episode across sources: a trainer's alert next to a kept alert of the same kind is
        the same episode, and so is a detected one next to a kept trainer's alert. Record order decides which
        is kept, so the outcome does not depend on how the run was read."""
        last = state.last_by_kind.get(alert.kind)
        if last is not None and PRODUCER in (alert.source, last.source) and self._same_place(alert, last):
            return False
        state.last_by_kind[alert.kind] = alert
        return True

    def _same_place(self, a: Alert, b: Alert) -> bool:
        if a.step is not None and b.step is not None:
            return abs(a.step - b.step) <= self.config.producer.dedup_steps
        if a.epoch is not None and b.epoch is not None:
            return a.epoch == b.epoch
        return False
