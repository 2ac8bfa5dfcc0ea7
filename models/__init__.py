"""Model registry: names to files. Weights are never committed; see models/README.md."""
