"""Detector: backends behind one interface, pre/post-processing, the batching service."""
