"""Reading a run's YAML config (Lightning's hparams.yaml) without ever running code from it.

Lightning writes Python objects it cannot represent otherwise with ``!!python/...`` tags; a safe
loader refuses those, so they are read as their tag name instead of failing the whole file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads unknown tags as text (``<python/object:argparse.Namespace>``)."""


def _unknown(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> str:
    return f"<{suffix}>"


_Loader.add_multi_constructor("tag:yaml.org,2002:", _unknown)
_Loader.add_multi_constructor("!", _unknown)


def read_yaml_config(path: Path) -> dict[str, Any]:
    """The mapping in ``path``; {} when it is missing, empty or not a mapping."""
    try:
        value = yaml.load(path.read_bytes(), Loader=_Loader)
    except (OSError, yaml.YAMLError):
        return {}
    return value if isinstance(value, dict) else {}
