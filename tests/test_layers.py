"""The layer contract, checked on the source: which part of termmon may import which.

views -> analysis -> model -> ingest, and the producer (termmon.telemetry) shares only the stdlib-only
modules with the reader side (BRIEF, DESIGN.md). Every ``import`` in termmon/ is read by AST, lazy
ones inside functions and ``TYPE_CHECKING`` blocks included, so a shortcut taken in a hurry shows up
here rather than as a training script that suddenly pulls in the TUI.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "termmon"

#: Standard library only; any part of termmon may import them.
SHARED = frozenset({"format", "roles", "sanitize", "atomic", "errors"})
#: The producer side: runs inside the training process, next to torch (the framework callbacks too).
PRODUCER = frozenset({"telemetry", "diagnostics", "integrations"})
#: Reader-side layers, lowest first: a part imports the shared modules, its own layer and lower ones.
#: ``remote`` mirrors remote run directories for ingest (discovery resolves ``host:path`` through it,
#: and it reads with ingest's tailer), so it sits in the ingest layer, with the monitor's control.json
#: writer and the path checks.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"ingest", "remote", "control", "paths"}),
    frozenset({"model"}),
    frozenset({"analysis"}),
    frozenset({"views", "tools", "loading", "api"}),
)
#: Entry points: may import anything.
ENTRY = frozenset({"__init__", "__main__", "cli", "demo"})
#: Terminal UI libraries: only the presentation layer and the entry points use them.
UI_LIBRARIES = frozenset({"textual", "rich", "plotext"})


def _part(path: Path) -> str:
    """``termmon/ingest/jsonl.py`` -> ``ingest``; ``termmon/format.py`` -> ``format``."""
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module an import statement in ``path`` names, as an absolute dotted name."""
    package = ["termmon", *path.relative_to(ROOT).parent.parts]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            if module == "termmon":  # ``from termmon import roles``
                for alias in node.names:
                    yield node.lineno, f"termmon.{alias.name}"


def _allowed(source: str) -> frozenset[str] | None:
    """The termmon parts ``source`` may import; None for any."""
    if source in ENTRY:
        return None
    if source in SHARED:
        return SHARED
    if source in PRODUCER:
        return SHARED | PRODUCER
    allowed = set(SHARED)
    for layer in LAYERS:
        allowed |= layer
        if source in layer:
            return frozenset(allowed)
    raise AssertionError(f"termmon/{source} is in no layer: add it to tests/test_layers.py")


def _violations() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        source = _part(path)
        allowed = _allowed(source)
        below_views = source in SHARED or source in PRODUCER or any(source in layer for layer in LAYERS[:-1])
        for line, module in _imports(path):
            top, _, rest = module.partition(".")
            where = f"{path.relative_to(ROOT.parent)}:{line}"
            if top == "termmon" and rest:
                target = rest.split(".")[0]
                if allowed is not None and target != source and target not in allowed:
                    found.append(f"{where}: {source} imports {module}")
            elif top in UI_LIBRARIES and below_views:
                found.append(f"{where}: {source} imports {module}, a terminal UI library")
    return found


def test_every_import_follows_the_layers() -> None:
    assert _violations() == []


@pytest.mark.parametrize(
    ("source", "code", "expected"),
    [
        ("ingest", "from termmon.model.run import Run", "ingest imports termmon.model.run"),
        ("model", "import rich.text", "model imports rich.text, a terminal UI library"),
        ("telemetry", "def f():\n    from termmon.ingest import batch", "telemetry imports termmon.ingest"),
        ("analysis", "from ..views import app", "analysis imports termmon.views"),
    ],
)
def test_the_check_catches_a_wrong_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, code: str, expected: str
) -> None:
    """The same walk over a tree with one bad import reports exactly that import."""
    root = tmp_path / "termmon"
    (root / source).mkdir(parents=True)
    (root / source / "bad.py").write_text(code + "\n")
    monkeypatch.setattr(f"{__name__}.ROOT", root)
    found = _violations()
    assert len(found) == 1 and found[0].endswith(expected)
