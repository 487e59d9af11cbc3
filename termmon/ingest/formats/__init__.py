"""The formats termmon reads: one module per format, declared in :mod:`.registry`.

:mod:`.base` holds the declaration (:class:`~.base.Format`) and the reader protocol; see
docs/formats.md for what each format reads and how.
"""
