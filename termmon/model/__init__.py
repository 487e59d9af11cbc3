"""Per-run state built from records: compact numpy series, status, events, display downsampling."""
