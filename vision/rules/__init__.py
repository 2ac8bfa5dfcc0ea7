"""Rules turn tracked detections into incident events. Each keeps per-track state it evicts."""
