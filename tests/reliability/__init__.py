"""Reliability and security: faults injected into the real running service (issue 10)."""
