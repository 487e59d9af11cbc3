"""The PyTorch-side logger: ``Telemetry`` writes the run directories termmon reads.

Importing this package pulls in torch and the standard library only: never the TUI, plotting or pandas.
"""

from termmon.telemetry.config import TelemetryConfig
from termmon.telemetry.generation import collapse_metrics, loss_breakdown, token_stats
from termmon.telemetry.logger import Telemetry

__all__ = ["Telemetry", "TelemetryConfig", "collapse_metrics", "loss_breakdown", "token_stats"]
