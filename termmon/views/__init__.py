"""Presentation: the Textual app and the static renderers. Views read the model; they never parse files."""
