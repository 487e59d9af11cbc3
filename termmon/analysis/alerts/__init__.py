"""Alerts: detectors over a run's series and events that catch a failing run early, one alert per episode.

``AlertEngine(load_alert_config(path)).update(run)`` gives the new alerts of a run; docs/alerts.md lists the
detectors, their defaults and the config file.
"""

from termmon.analysis.alerts.config import (
    AlertConfig,
    default_config_path,
    load_alert_config,
    parse_alert_config,
)
from termmon.analysis.alerts.engine import AlertEngine
from termmon.analysis.alerts.model import Alert, Severity

__all__ = [
    "Alert",
    "AlertConfig",
    "AlertEngine",
    "Severity",
    "default_config_path",
    "load_alert_config",
    "parse_alert_config",
]
