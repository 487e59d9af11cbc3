"""Logging from a training script must not drag in the TUI, plotting or pandas."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.torch


def test_the_logger_imports_no_ui_or_plotting_library(tmp_path: str) -> None:
    code = (
        "import sys, json, termmon\n"
        "from termmon import Telemetry\n"
        "from termmon.diagnostics import compute_lightweight_blob_metrics\n"
        f"with Telemetry({str(tmp_path)!r}, 'r', log_every=1) as tm:\n"
        "    tm.step(loss=1.0)\n"
        "heavy = ['textual', 'plotext', 'matplotlib', 'pandas', 'rich', 'sklearn']\n"
        "print(json.dumps({m: m in sys.modules for m in heavy + ['torch']}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded.pop("torch") is True  # the check itself works: a module that is imported shows up
    assert loaded == {m: False for m in loaded}
