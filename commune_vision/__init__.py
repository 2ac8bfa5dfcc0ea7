"""Composition root: CLI, process supervisor and the per-camera wiring of all stages.

The only package that knows every stage; nothing imports it.
"""

__version__ = "0.1.0"
