"""Starting the monitor imports nothing heavy that drawing a chart does not need (issue 15, item 2).

pandas, matplotlib, scikit-learn, torch and scipy each cost from a tenth of a second to seconds of import
at start-up; the monitor's modules must import them lazily, where a command that needs them runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "matplotlib", "sklearn", "torch", "scipy")

#: What ``termmon RUNS`` imports before its first frame: the CLI, the app and everything under the
#: layers it draws from (views -> analysis -> model -> ingest), remote sources included.
CODE = f"""
import importlib, json, pkgutil, sys
import termmon.cli, termmon.loading, termmon.views.app
for package in ("termmon.views", "termmon.analysis", "termmon.model", "termmon.ingest", "termmon.remote"):
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        importlib.import_module(info.name)
print(json.dumps({{m: m in sys.modules for m in {HEAVY!r} + ("textual", "numpy")}}))
"""


def test_the_monitor_modules_import_no_heavy_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    # The check itself works: modules the monitor does import show up.
    assert loaded.pop("textual") is True and loaded.pop("numpy") is True
    assert loaded == {m: False for m in HEAVY}
