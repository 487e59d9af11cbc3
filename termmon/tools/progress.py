"""The progress bar the offline tools draw on stderr, so stdout stays clean for their results."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def stderr_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False),  # descriptions may hold names from disk
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
