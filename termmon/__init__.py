"""termmon: a terminal live monitor for machine-learning training runs.

``import termmon`` stays light: the reading API (``load``, ``follow``) and the producer (``Telemetry``)
are imported on first use, so a training script never pulls in the TUI, plotting or pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Telemetry", "__version__", "follow", "load"]

if TYPE_CHECKING:
    from termmon.api import follow, load
    from termmon.telemetry import Telemetry

_LAZY = {
    "load": "termmon.api",
    "follow": "termmon.api",
    "Telemetry": "termmon.telemetry",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'termmon' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
