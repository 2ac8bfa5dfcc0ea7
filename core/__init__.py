"""Shared base: config models, frame transport, storage, the Redis bus and shared types.

Nothing in ``core`` imports ``streams``, ``vision``, ``api`` or ``commune_vision``.
"""
