"""What the model means: alert detectors, summaries and reports. Reads the model; never parses files."""
