"""Streams: sources, reconnect, demux and decode, frame ring writing, camera health.

Imports ``core`` only; never ``vision`` or ``api``.
"""
