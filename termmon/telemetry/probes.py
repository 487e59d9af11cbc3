"""System probes: process RSS, the CUDA allocator's counters, and GPU utilisation sampled off-thread.

Each probe imports its library lazily and reports nothing (not zero) when the library or the device is
missing, so a CPU-only machine simply has no GPU fields.
"""

from __future__ import annotations

import threading
from typing import Any

_GIB = float(1 << 30)
_MIB = float(1 << 20)


class RssProbe:
    """Resident memory of this process in MiB via psutil (~17 µs a call)."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()

    def read(self) -> dict[str, float]:
        return {"cpu_mem_rss_mb": self._process.memory_info().rss / _MIB}


def cuda_memory(device: Any) -> dict[str, float]:
    """Allocated and reserved GiB on ``device`` from the allocator's counters: host-side, no sync."""
    import torch

    return {
        "gpu_mem_allocated": torch.cuda.memory_allocated(device) / _GIB,
        "gpu_mem_reserved": torch.cuda.memory_reserved(device) / _GIB,
    }


class NvmlSampler:
    """GPU utilisation (%) sampled every ``interval`` s on a daemon thread; ``window()`` is the mean since the
    previous call. Construction raises when NVML (nvidia-ml-py) or a driver is missing."""

    def __init__(self, device_index: int, interval: float = 1.0) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        self._interval = interval
        self._lock = threading.Lock()
        self._sum = 0.0
        self._count = 0
        self._max = 0.0
        self._stop = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="termmon-nvml", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        util = float(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
        with self._lock:
            self._sum += util
            self._count += 1
            self._max = max(self._max, util)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._sample()
            except Exception:  # a lost device or driver: stop sampling, training goes on
                return

    def window(self) -> dict[str, float]:
        with self._lock:
            if not self._count:
                return {}
            out = {"gpu_util": self._sum / self._count, "gpu_util_max": self._max}
            self._sum, self._count, self._max = 0.0, 0, 0.0
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self._interval)
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # shutting down a library that is already gone is not worth an alert
            return
