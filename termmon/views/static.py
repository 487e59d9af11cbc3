"""``termmon --static``: the four panels once, as PNG/SVG/PDF (matplotlib) or as text (plotext).

The panels come from :mod:`termmon.views.panels`, like the live monitor's, so a PNG shows exactly
what the TUI shows. matplotlib is imported only here, lazily, with the Agg backend (no display).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from termmon.errors import NoRunsError, TermmonError, UsageError
from termmon.ingest.discovery import no_runs_message
from termmon.loading import load_workspace, report_problems
from termmon.model.run import Run
from termmon.model.workspace import Workspace
from termmon.paths import require_output_file
from termmon.views.alert_feed import AlertFeed
from termmon.views.colors import NONFINITE_RGB, SEVERITY_RGB, RunColors
from termmon.views.panels import PanelData, build_panel, run_panels
from termmon.views.plotext_draw import build_chart, matrix_ansi
from termmon.views.scales import set_y_axis
from termmon.views.text import sanitize

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FORMATS = (".png", ".svg", ".pdf")
FIGURE_POINTS = 1500


def _rgb(color: tuple[int, int, int]) -> tuple[float, float, float]:
    return (color[0] / 255, color[1] / 255, color[2] / 255)


def load(paths: list[str], config: Path | None) -> tuple[list[Run], AlertFeed]:
    """Every run under ``paths``, fully read, with its alerts."""
    workspace, feed = _load(paths, config)
    return list(workspace.runs.values()), feed


def _load(paths: list[str], config: Path | None) -> tuple[Workspace, AlertFeed]:
    workspace = load_workspace(paths)
    runs = list(workspace.runs.values())
    if not runs:
        report_problems("termmon", workspace)
        raise NoRunsError(no_runs_message(paths))
    feed = AlertFeed(config)
    for run in runs:
        feed.update(run)
    return workspace, feed


def build_panels(runs: Sequence[Run], feed: AlertFeed, max_points: int) -> list[PanelData]:
    """The panels the monitor shows first for these runs (they follow the first run's metrics)."""
    colors = RunColors()
    return [
        build_panel(
            spec,
            runs,
            colors=colors,
            max_points=max_points,
            alerts={r.path: feed.marks(r.path) for r in runs},
        )
        for spec in run_panels(runs[0] if runs else None)
    ]


def apply_ticks(ax: Axes, data: PanelData) -> None:
    """The panel's limits and ticks on a matplotlib axis: values are in axis units already, so the
    ticks :mod:`termmon.views.scales` chose are placed as they are (the same ones the terminal shows)."""
    set_y_axis(ax, data.scale, *data.y_range, integer=data.integer)
    if data.x_range is not None:
        ax.set_xlim(*data.x_range)
        x_ticks = data.x_ticks(target=7)
        ax.set_xticks([p for p, _ in x_ticks], [label.strip() for _, label in x_ticks])


def export_figure(panels: list[PanelData], output: Path, heading: str = "") -> str:
    """Write the panels to ``output`` (.png/.svg/.pdf); returns the line to tell the user.

    Without matplotlib, writes the text rendering next to it (``.txt``) and says so.
    """
    if output.suffix.lower() not in FORMATS:
        raise UsageError(f"termmon: {output}: unknown image format (use {', '.join(FORMATS)})")
    try:
        import matplotlib
    except ImportError:
        fallback = output.with_suffix(".txt")
        _write(fallback, render_text(panels, color=False))
        return f"matplotlib is not installed: wrote the text rendering to {fallback} instead of {output}"
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    rows = max(1, -(-len(panels) // 2))
    fig, axes = plt.subplots(rows, 2, figsize=(13, 4.25 * rows), dpi=100, squeeze=False)
    try:
        for ax in axes.flat[len(panels) :]:
            ax.set_visible(False)
        for ax, data in zip(axes.flat, panels, strict=False):
            ax.set_title(data.title)
            if data.message:
                ax.text(
                    0.5,
                    0.5,
                    data.message,
                    ha="center",
                    va="center",
                    wrap=True,
                    fontsize=9,
                    color="0.35",
                    transform=ax.transAxes,
                )
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            top = blended_transform_factory(ax.transData, ax.transAxes)
            for trace in data.traces:
                color = _rgb(trace.color)
                pts = trace.points
                style = "--" if "test" in trace.metric else "-"
                marker = "o" if trace.epoch_level else None
                if trace.smoothed is not None:
                    ax.plot(pts.x, pts.y, color=color, alpha=0.25, linewidth=0.8)
                    ax.plot(*trace.smoothed, color=color, linestyle=style, linewidth=1.4, label=trace.label)
                else:
                    ax.plot(
                        pts.x,
                        pts.y,
                        color=color,
                        linestyle=style,
                        marker=marker,
                        markersize=3,
                        linewidth=1.0 if not trace.epoch_level else 1.4,
                        label=sanitize(trace.label),
                    )
                bad = [*pts.nan_x, *pts.posinf_x]
                if bad:
                    ax.scatter(
                        bad,
                        [0.97] * len(bad),
                        marker="x",
                        color=_rgb(NONFINITE_RGB),
                        s=18,
                        transform=top,
                        label=f"NaN/+Inf ({sanitize(trace.label)})",
                        zorder=5,
                    )
                if len(pts.neginf_x):
                    ax.scatter(
                        pts.neginf_x,
                        [0.03] * len(pts.neginf_x),
                        marker="x",
                        color=_rgb(NONFINITE_RGB),
                        s=18,
                        transform=top,
                        zorder=5,
                    )
            for mark in data.alerts:
                ax.axvline(
                    mark.x,
                    color=_rgb(SEVERITY_RGB.get(mark.severity, SEVERITY_RGB["warning"])),
                    alpha=0.5,
                    linewidth=1,
                    linestyle=":",
                )
            apply_ticks(ax, data)
            ax.set_xlabel(data.x_label)
            ax.set_ylabel(sanitize(data.y_label))
            ax.grid(alpha=0.25)
            ax.legend(fontsize=7, loc="best", framealpha=0.7)
        if heading:
            fig.suptitle(sanitize(heading))
        fig.tight_layout()
        try:
            fig.savefig(output, format=output.suffix.lower()[1:])
        except OSError as exc:
            raise TermmonError(f"termmon: cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return f"wrote {output}"


def render_text(panels: list[PanelData], width: int = 120, height: int = 40, color: bool = False) -> str:
    """The panels as a grid of plotext charts, two abreast (a message box where a panel has no data)."""
    from textual_plotext.plot import Plot

    cell_w, cell_h = max(30, width // 2), max(10, height // 2)
    blocks: list[list[str]] = []
    for data in panels:
        if data.message:
            blocks.append(_message_block(data, cell_w, cell_h))
            continue
        plot = Plot()
        build_chart(plot, data, cell_w, cell_h, theme=None if color else "clear", color=color)
        text = matrix_ansi(plot)
        lines = (text if color else Plot.uncolorize(text)).splitlines()
        blocks.append(lines[:cell_h])
    rows = []
    if len(blocks) % 2:
        blocks.append([])
    for left, right in zip(blocks[::2], blocks[1::2], strict=True):
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else ""
            b = right[i] if i < len(right) else ""
            pad = cell_w - len(Plot.uncolorize(a)) if color else cell_w - len(a)
            rows.append(a + " " * max(0, pad) + b)
    return "\n".join(line.rstrip() for line in rows) + "\n"


def _message_block(data: PanelData, width: int, height: int) -> list[str]:
    import textwrap

    inner = width - 4
    title = sanitize(data.title, inner)
    lines = [f"┌─ {title} " + "─" * max(0, inner - len(title) - 1) + "┐"]
    body = textwrap.wrap(sanitize(data.message), inner)
    for i in range(height - 2):
        text = body[i] if i < len(body) else ""
        lines.append(f"│ {text:<{inner}} │")
    lines.append("└" + "─" * (width - 2) + "┘")
    return lines


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TermmonError(f"termmon: cannot write {path}: {exc.strerror or exc}") from exc


def render_static(paths: list[str], output: Path | None, config: Path | None) -> int:
    """``termmon --static``: an image when ``output`` is given, else text on stdout."""
    if output is not None:
        if output.suffix.lower() not in FORMATS:
            raise UsageError(f"termmon: {output}: unknown image format (use {', '.join(FORMATS)})")
        require_output_file(output, "termmon")
    workspace, feed = _load(paths, config)
    runs = list(workspace.runs.values())
    if output is None:
        size = shutil.get_terminal_size((120, 40))
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        panels = build_panels(runs, feed, max_points=2 * size.columns)
        sys.stdout.write(render_text(panels, size.columns, max(24, size.lines - 2), color=color))
        return report_problems("termmon", workspace)
    panels = build_panels(runs, feed, max_points=FIGURE_POINTS)
    heading = ", ".join(run.name for run in runs[:6]) + (
        f" and {len(runs) - 6} more" if len(runs) > 6 else ""
    )
    note = export_figure(panels, output, heading=heading)
    print(note, file=sys.stderr if note.startswith("matplotlib") else sys.stdout)
    return report_problems("termmon", workspace)
