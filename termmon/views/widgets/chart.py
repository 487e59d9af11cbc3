"""A chart panel: a plotext plot of one :class:`PanelData`, or the panel's message when it has no data."""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from termmon.views.panels import PanelData, PanelSpec
from termmon.views.plotext_draw import draw_panel
from termmon.views.text import sanitize


class ChartPanel(PlotextPlot):
    """Focusable, so the metric picker (``m``) knows which panel to change."""

    can_focus = True

    def __init__(self, spec: PanelSpec, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = spec
        self.data: PanelData | None = None
        self.signature: object = None

    def show(self, data: PanelData, signature: object) -> None:
        """Draw ``data``; ``signature`` identifies it so an unchanged panel is not rebuilt."""
        self.data = data
        self.signature = signature
        if not data.message:
            draw_panel(self.plt, data, labels=False)
        nonfinite = sum(trace.nonfinite for trace in data.traces)
        # Text, not str: Textual parses a str title as markup, and a metric name is data.
        self.border_title = Text(sanitize(data.title) + (f" · x = {nonfinite} NaN/Inf" if nonfinite else ""))
        self.border_subtitle = Text(data.x_label if not data.message else "")
        self.refresh()

    def render(self) -> RenderResult:
        if self.data is None:
            return Text("loading…", style="dim")
        if self.data.message:
            return Text(sanitize(self.data.message), style="italic")
        return super().render()
