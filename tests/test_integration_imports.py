"""Importing termmon (monitor, logger, or the integrations package) never imports a training framework."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.torch

FRAMEWORKS = ["transformers", "lightning", "pytorch_lightning", "accelerate"]


def _loaded_after(code: str) -> dict[str, bool]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps({{m: m in sys.modules for m in {FRAMEWORKS!r}}}))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )
    loaded: dict[str, bool] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_termmon_and_its_logger_loads_no_framework() -> None:
    loaded = _loaded_after(
        "import termmon, termmon.telemetry, termmon.integrations, termmon.integrations.session\n"
        "from termmon import Telemetry\n"
        "termmon.load  # the reading API resolves lazily; touching it must not pull a framework in either"
    )
    assert loaded == {m: False for m in FRAMEWORKS}


@pytest.mark.slow
def test_the_framework_modules_do_load_their_framework() -> None:
    """The probe itself works: the one module that needs a framework shows it as loaded."""
    pytest.importorskip("transformers")
    pytest.importorskip("lightning")
    assert _loaded_after("import termmon.integrations.hf")["transformers"] is True
    assert _loaded_after("import termmon.integrations.lightning")["lightning"] is True
