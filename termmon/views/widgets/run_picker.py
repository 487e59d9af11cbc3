"""The run picker: one row a run (status, name, progress, last loss, alerts, a loss sparkline)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from rich.text import Text
from textual.binding import BindingType
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from termmon.model.run import Run, RunStatus
from termmon.roles import Role, first
from termmon.views.actions import bindings
from termmon.views.colors import STATUS_GLYPH, hex_color
from termmon.views.text import sanitize

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 8


def loss_metric(run: Run) -> str | None:
    """The loss a run's row summarises: its training loss by role (termmon.roles)."""
    return first(Role.TRAIN_LOSS, run.metrics)


def sparkline(values: np.ndarray, width: int = SPARK_WIDTH) -> Text:
    """The last values as block characters, a mean per chunk (``np.array_split``'s chunks); a chunk
    with a non-finite value is a red ×, never a silent gap. In plain Python: a row is rendered again
    whenever its run gains records, and for 32 values numpy's per-call cost is most of the work."""
    text = Text(no_wrap=True)
    tail = values[-width * 4 :].tolist()
    if not tail:
        return text
    count = min(width, len(tail))
    size, extra = divmod(len(tail), count)
    finite = [v for v in tail if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span, top = hi - lo or 1.0, len(SPARK) - 1
    plain: list[str] = []
    start = 0
    for i in range(count):
        chunk = tail[start : start + size + (i < extra)]
        start += len(chunk)
        if len(finite) < len(tail) and not all(map(math.isfinite, chunk)):
            text.append("".join(plain))
            text.append("×", style="bold red")
            plain = []
            continue
        mean = sum(chunk) / len(chunk)
        level = (mean - lo) / span * top
        if not math.isfinite(level):  # past the float limits (a sum, a span): the side it is on
            level = top if mean > 0 else 0
        plain.append(SPARK[max(0, min(top, int(level)))])
    text.append("".join(plain))
    return text


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.2e}"


@dataclass(frozen=True)
class RowInfo:
    """What a picker row shows, computed by the app from the model."""

    path: Path
    name: str
    status: RunStatus
    step: int | None
    epoch: int | None
    loss: float | None
    alerts: int
    marked: bool
    loss_tail: tuple[float, ...]
    color: tuple[int, int, int]
    starting: bool = False


def is_starting(run: Run, status: RunStatus) -> bool:
    """Started and running but nothing logged yet (a trainer still importing torch)."""
    return status == RunStatus.RUNNING and run.start is not None and run.last_step is None and not run.metrics


def row_info(run: Run, now: float, alerts: int, marked: bool, color: tuple[int, int, int]) -> RowInfo:
    metric = loss_metric(run)
    stats = run.stats(metric) if metric else None
    tail = tuple(run.metrics[metric].values.view[-SPARK_WIDTH * 4 :].tolist()) if metric else ()
    return RowInfo(
        path=run.path,
        name=run.name,
        status=run.status(now),
        step=run.last_step,
        epoch=run.last_epoch,
        loss=stats.last if stats and stats.count else None,
        alerts=alerts,
        marked=marked,
        loss_tail=tail,
        color=color,
        starting=is_starting(run, run.status(now)),
    )


def render_row(info: RowInfo, width: int) -> Text:
    """One row fitted to ``width`` cells: the sparkline and counts go first when space runs out."""
    glyph, style = STATUS_GLYPH[info.status]
    color = hex_color(info.color)
    progress = []
    if info.epoch is not None:
        progress.append(f"e{info.epoch}")
    if info.step is not None:
        progress.append(f"s{info.step}")
    right = Text(no_wrap=True)
    right.append(f" {'starting…' if info.starting else ' '.join(progress):>10}", style="dim")
    if info.loss is not None:
        right.append(f" {_fmt(info.loss)}", style="bold red" if not math.isfinite(info.loss) else "")
    if info.alerts:
        right.append(f" ⚠{info.alerts}", style="yellow")
    spark = sparkline(np.asarray(info.loss_tail, dtype=np.float64))
    name_room = width - 4 - right.cell_len - (spark.cell_len + 1 if spark else 0)
    if name_room < 10 and spark:  # drop the sparkline before squeezing the name
        spark = Text()
        name_room = width - 4 - right.cell_len
    if name_room < 8:
        right = Text(f" {_fmt(info.loss)}" if info.loss is not None else "", no_wrap=True)
        name_room = width - 4 - right.cell_len
    name = sanitize(info.name)
    if len(name) > max(name_room, 4):
        name = name[: max(name_room, 4) - 1] + "…"
    row = Text(no_wrap=True, overflow="ellipsis")
    row.append("▌" if info.marked else " ", style=color)
    row.append(glyph, style=style)
    row.append(" ")
    row.append(name.ljust(max(name_room, 0)), style=f"bold {color}" if info.marked else "")
    row.append_text(right)
    if spark:
        row.append(" ")
        row.append_text(spark)
    return row


#: Rows above and below the visible ones that are rendered too, so a short scroll shows no stale row.
RENDER_MARGIN = 5


class RunPicker(OptionList):
    """Rows of runs; highlighting a row selects that run (the app listens for OptionHighlighted).

    Only the rows on screen are rendered. With 100 runs logging, re-rendering every row (sparkline,
    fitted name) on each redraw cost a tenth of a core; and listing 1,000 runs rendered 1,000 rows
    before the first frame. A row off screen shows its name until it scrolls into view, when its
    latest info is rendered.
    """

    BINDINGS: ClassVar[list[BindingType]] = list(bindings("picker"))

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.paths: list[Path] = []
        self._infos: list[RowInfo] = []
        self._rows: list[Text] = []  # each option's prompt now
        self._shown: list[RowInfo | None] = []  # the info each prompt was rendered from (None: a placeholder)
        self._width = 0
        #: The run the user moved the highlight to, until the app selects it: a redraw in between
        #: (its OptionHighlighted still queued) must not move the highlight back to the old selection.
        self._moved_to: Path | None = None
        self._showing = False

    def show(self, infos: list[RowInfo], selected: Path | None) -> None:
        """Show these rows, keeping the highlight on ``selected`` (state survives every update), or on
        the row the user just moved to."""
        self._showing = True
        try:
            self._show(infos, selected)
        finally:
            self._showing = False

    def _show(self, infos: list[RowInfo], selected: Path | None) -> None:
        width = max(20, self.scrollable_content_region.width or self.size.width or 40)
        paths = [info.path for info in infos]
        if width != self._width:
            self._shown = [None] * len(self._shown)  # every row is fitted again to the new width
        self._width = width
        self._infos = infos
        if paths != self.paths:
            self._rows = [_placeholder(info) for info in infos]
            self._shown = [None] * len(infos)
            self._fill(self._visible(), replace=False)
            self.set_options(Option(row) for row in self._rows)
            self.paths = paths
        else:
            self._fill(self._visible())
        if self._moved_to == selected or self._moved_to not in paths:
            self._moved_to = None  # taken up by the app, or gone
        else:
            selected = self._moved_to
        if selected in paths:
            index = paths.index(selected)
            if self.highlighted != index:
                self.highlighted = index
        elif paths:
            self.highlighted = 0

    def watch_highlighted(self, highlighted: int | None) -> None:
        super().watch_highlighted(highlighted)
        if not self._showing and highlighted is not None and 0 <= highlighted < len(self.paths):
            self._moved_to = self.paths[highlighted]

    def _visible(self) -> range:
        """The indices of the rows on screen, and a margin around them."""
        top = int(self.scroll_offset.y)
        height = self.scrollable_content_region.height or self.size.height or 24
        return range(max(0, top - RENDER_MARGIN), min(len(self._infos), top + height + RENDER_MARGIN))

    def _fill(self, indices: range, *, replace: bool = True) -> None:
        """Render the rows at ``indices`` whose info changed since they were rendered. The app hands
        the same RowInfo object for a run that did not change, so identity says "unchanged"; a row
        that renders the same is not sent to the terminal again (a NaN tail is never equal to itself,
        so rendered rows are compared, not infos)."""
        for index in indices:
            info = self._infos[index]
            if self._shown[index] is info:
                continue
            row = render_row(info, self._width)
            self._shown[index] = info
            if row != self._rows[index]:
                self._rows[index] = row
                if replace:
                    self.replace_option_prompt_at_index(index, row)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._infos and len(self._shown) == len(self._infos) == self.option_count:
            self._fill(self._visible())

    def on_resize(self) -> None:
        selected = self.selected_path  # before the rows go: a resize must not move the selection
        self.paths = []  # re-fit every row to the new width
        self.show(self._infos, selected)

    @property
    def selected_path(self) -> Path | None:
        index = self.highlighted
        return self.paths[index] if index is not None and 0 <= index < len(self.paths) else None


def _placeholder(info: RowInfo) -> Text:
    """A row not rendered yet (off screen): its glyph and name, cheap to build."""
    glyph, style = STATUS_GLYPH[info.status]
    row = Text(no_wrap=True, overflow="ellipsis")
    row.append(" ")
    row.append(glyph, style=style)
    row.append(" ")
    row.append(sanitize(info.name))
    return row
