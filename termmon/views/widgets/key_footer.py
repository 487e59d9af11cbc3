"""The key footer: Textual's, made to fit the terminal's width instead of cutting its last key off."""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.widgets import Footer

#: Cells a footer key takes beyond its key and label: padding in Textual's full style, a margin in its
#: compact style.
FULL_EXTRA, COMPACT_EXTRA = 3, 2
#: Cells the command palette's key takes at the right end (its label, border and padding).
PALETTE_CELLS = 14


class KeyFooter(Footer):
    """At 80 columns the full footer ran out mid-word ("e Expor"). Where it would, the keys go compact,
    and then the palette's key goes (ctrl+p still opens the palette, and ``?`` lists it): every key
    shown is shown whole."""

    def on_resize(self, event: events.Resize) -> None:
        width = event.size.width
        labels = [
            cell_len(self.app.get_key_display(binding)) + cell_len(binding.description)
            for _, binding, _, _ in self.screen.active_bindings.values()
            if binding.show
        ]
        compact = sum(labels) + FULL_EXTRA * len(labels) + PALETTE_CELLS > width
        palette = sum(labels) + COMPACT_EXTRA * len(labels) + PALETTE_CELLS <= width or not compact
        if (compact, palette) != (self.compact, self.show_command_palette):
            self.compact = compact
            self.show_command_palette = palette
            self.call_after_refresh(self.recompose)
