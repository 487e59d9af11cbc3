"""The demo's live run without torch: the shipped recording replayed at real pace, obeying control.json.

It behaves like a trainer as far as the monitor can tell: records appear as they happen (times
rewritten to now), and a log_every request is picked up within ~2 s, applied at the next logged step
and answered with a ``control_change`` event, so ``+``/``-`` in the demo visibly work.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

from termmon.control import read_control
from termmon.format import (
    CONTROL_JSON,
    CONTROL_POLL_SECONDS,
    EV_STEP,
    METRICS_JSONL,
    clamp_log_every,
    encode_record,
)

START_LOG_EVERY = 20
#: A real denoiser training's metrics.jsonl (written by scripts/make_demo_runs.py), replayed without torch.
RECORDING = Path(__file__).parent / "recordings" / "denoiser.jsonl"


def load_recording(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class Replay(threading.Thread):
    """Writes ``records`` into ``run_dir/metrics.jsonl`` at the pace their times say."""

    def __init__(self, records: list[dict[str, Any]], run_dir: Path, speed: float = 1.0) -> None:
        super().__init__(name="termmon-demo-replay", daemon=True)
        self.records = records
        self.run_dir = run_dir
        self.speed = speed
        self.stop_event = threading.Event()
        self.started = threading.Event()
        self.log_every = START_LOG_EVERY
        self._control_mtime = 0.0
        self._control_checked = 0.0
        self._last_logged = -(10**9)

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=2)

    def run(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.records:
            return
        t0 = float(self.records[0].get("time", 0.0))
        start = time.time()
        with open(self.run_dir / METRICS_JSONL, "a", encoding="utf-8") as out:
            for record in self.records:
                offset = (float(record.get("time", t0)) - t0) / self.speed
                if self.stop_event.wait(max(0.0, start + offset - time.time())):
                    return
                record = {**record, "time": round(start + offset, 3)}
                if record.get("event") == "start":
                    record["log_every"] = self.log_every
                    record["config"] = {**record.get("config", {}), "log_every": self.log_every}
                for line in self._lines(record):
                    out.write(line + "\n")
                out.flush()
                self.started.set()

    def _lines(self, record: dict[str, Any]) -> list[str]:
        lines = []
        step = record.get("step")
        change = self._check_control(record)
        if change is not None:
            lines.append(encode_record(change))
        if record.get("event") == EV_STEP and isinstance(step, int):
            if step - self._last_logged < self.log_every:
                return lines
            self._last_logged = step
        lines.append(encode_record(record))
        return lines

    def _check_control(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The trainer's side of the protocol: a cheap stat at most every CONTROL_POLL_SECONDS."""
        now = time.monotonic()
        if now - self._control_checked < CONTROL_POLL_SECONDS or record.get("event") != EV_STEP:
            return None
        self._control_checked = now
        with contextlib.suppress(OSError):
            mtime = (self.run_dir / CONTROL_JSON).stat().st_mtime
            if mtime == self._control_mtime:
                return None
            control = read_control(self.run_dir)
            if control is None:
                return None  # unreadable: retried on the next change
            self._control_mtime = mtime
            requested = control.get("log_every")
            if not isinstance(requested, int) or isinstance(requested, bool):
                return None
            new = clamp_log_every(requested)
            if new == self.log_every:
                return None
            old, self.log_every = self.log_every, new
            return {
                "event": "control_change",
                "time": record.get("time"),
                "step": record.get("step"),
                "key": "log_every",
                "old": old,
                "new": new,
                "requested": requested,
                "clamped": new != requested,
            }
        return None
