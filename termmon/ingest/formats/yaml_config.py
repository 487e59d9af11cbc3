"""Reading a run's YAML config (Lightning's hparams.yaml) without ever running code from it.

Lightning writes Python objects it cannot represent otherwise with ``!!python/...`` tags; a safe
loader refuses those, so they are read as their tag name instead of failing the whole file.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml


@functools.cache
def _loader() -> type[yaml.SafeLoader]:
    """SafeLoader that reads unknown tags as text (``<python/object:argparse.Namespace>``). Built
    on first use: PyYAML's import is ~30 ms that the monitor's first frame does not need."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def unknown(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> str:
        return f"<{suffix}>"

    Loader.add_multi_constructor("tag:yaml.org,2002:", unknown)
    Loader.add_multi_constructor("!", unknown)
    return Loader


def read_yaml_config(path: Path) -> dict[str, Any]:
    """The mapping in ``path``; {} when it is missing, empty or not a mapping."""
    import yaml

    try:
        value = yaml.load(path.read_bytes(), Loader=_loader())
    except (OSError, yaml.YAMLError):
        return {}
    return value if isinstance(value, dict) else {}
