"""Widgets of the live monitor. Each renders state handed to it and posts messages; none reads files."""
