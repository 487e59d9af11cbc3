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


#: Readers' decoding modules: a format's declaration (what discovery asks) loads without them, and its
#: reader loads them when it first reads a run of that format.
READERS = (
    "yaml",
    "termmon.ingest.formats.tfrecord",
    "termmon.ingest.formats.tfevents_decode",
    "termmon.ingest.formats.leveldb_log",
    "termmon.ingest.formats.wandb_records",
)

LAZY = f"""
import json, sys, pathlib, tempfile
import termmon.cli, termmon.loading, termmon.views.app
from termmon.ingest.formats import registry
before = {{m: m in sys.modules for m in {READERS!r}}}
d = pathlib.Path(tempfile.mkdtemp())
(d / "events.out.tfevents.1.host").write_bytes(b"")
(d / "run-x.wandb").write_bytes(b"")
(d / "hparams.yaml").write_text("a: 1\\n")
(d / "metrics.csv").write_text("step,loss\\n")
for name in ("tfevents", "wandb", "lightning_csv"):
    fmt = registry.get(name)
    reader = fmt.open(fmt.locate(d, sorted(p.name for p in d.iterdir())).runs[0])
    reader.read(lambda records: None, 1 << 20)
    reader.close()
print(json.dumps([before, {{m: m in sys.modules for m in {READERS!r}}}]))
"""


def test_format_readers_load_their_decoders_on_first_use_only() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LAZY], capture_output=True, text=True, check=True, timeout=120
    )
    before, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert before == {m: False for m in READERS}
    assert after == {m: True for m in READERS}  # the check works: reading does load them
