"""``info`` events from seed 001's blob diagnostics: the cluster count changing, the silhouette crossing a
level. Not problems: milestones a researcher watches for, so each change is reported, at ``info``."""

from __future__ import annotations

import numpy as np

from termmon.analysis.alerts.base import Found, spot
from termmon.analysis.alerts.config import DiagnosticsConfig
from termmon.analysis.alerts.model import Severity, fmt_value
from termmon.analysis.alerts.points import Cursor
from termmon.format import DIAG_N_CLUSTERS, DIAG_SILHOUETTE
from termmon.model.run import Run


class DiagnosticsDetector:
    def __init__(self, config: DiagnosticsConfig) -> None:
        self.level = config.silhouette
        self.cursor = Cursor()
        self.clusters = 1.0  # training starts from one undifferentiated cluster (seed 001)
        self.above = False  # and with no silhouette at all

    def update(self, run: Run, now: float) -> list[Found]:
        found = []
        points = self.cursor.take(run, DIAG_N_CLUSTERS)
        if points is not None:
            for i in np.flatnonzero(np.isfinite(points.value)).tolist():
                value = float(points.value[i])
                if value == self.clusters:
                    continue
                at = spot(points, i)
                kind, verb = (
                    ("blob_formed", "blobs forming")
                    if value > self.clusters
                    else ("blobs_merged", "blobs merging")
                )
                message = f"{DIAG_N_CLUSTERS} {self.clusters:g} -> {value:g} at {at.where}: {verb}"
                found.append(at.found(kind, Severity.INFO, message, DIAG_N_CLUSTERS, value))
                self.clusters = value
        points = self.cursor.take(run, DIAG_SILHOUETTE)
        if points is not None:
            for i in np.flatnonzero(np.isfinite(points.value)).tolist():
                value = float(points.value[i])
                above = value >= self.level
                if above == self.above:
                    continue
                self.above = above
                at = spot(points, i)
                direction = "rose above" if above else "fell below"
                message = (
                    f"{DIAG_SILHOUETTE} {direction} {fmt_value(self.level)} at {at.where}: {fmt_value(value)}"
                )
                if above:
                    message += " (well-separated blobs)"
                found.append(at.found("silhouette_crossed", Severity.INFO, message, DIAG_SILHOUETTE, value))
        return found
