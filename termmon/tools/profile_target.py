"""Resolving ``MODULE:FUNC``, the training entry point profile-batch calls as ``FUNC(batch_size=N, epochs=E)``.

MODULE is either a dotted module importable from the current directory or a path to a ``.py`` file.
Every way this can fail becomes a ``TargetError`` with one line a user can act on.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any


class TargetError(Exception):
    """MODULE:FUNC does not name a callable that can be imported."""


def split_target(target: str) -> tuple[str, str]:
    module, sep, func = target.rpartition(":")
    if not sep or not module or not func:
        raise TargetError(f"{target!r} is not MODULE:FUNC (e.g. train:main or scripts/train.py:main)")
    return module, func


def resolve_target(target: str) -> Callable[..., Any]:
    module_name, func_name = split_target(target)
    module = _import(module_name)
    func = getattr(module, func_name, None)
    if func is None:
        raise TargetError(f"{module_name} has no function {func_name!r}")
    if not callable(func):
        raise TargetError(f"{module_name}:{func_name} is not callable (it is a {type(func).__name__})")
    resolved: Callable[..., Any] = func
    return resolved


def _import(name: str) -> ModuleType:
    if name.endswith(".py") or os.sep in name or "/" in name:
        return _import_file(Path(name))
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise TargetError(f"no module named {name!r} (looked in {cwd} and sys.path)") from exc
        raise TargetError(f"importing {name} failed: {describe_exception(exc)}") from exc
    except Exception as exc:  # the user's module may raise anything at import time
        raise TargetError(f"importing {name} failed: {describe_exception(exc)}") from exc


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise TargetError(f"no such file: {path}")
    module_name = f"_termmon_target_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    sys.path.insert(0, str(path.resolve().parent))  # so the file's sibling imports work
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise TargetError(f"importing {path} failed: {describe_exception(exc)}") from exc
    return module


def describe_exception(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
