"""Reading run directories while a trainer writes them.

Discovery of run directories, the incremental JSONL tailer, whole-file readers with last-good
fallback, adapters for the seed formats, and change notification. Pure and synchronous except
``watch``; nothing here knows about the model or the views.
"""
