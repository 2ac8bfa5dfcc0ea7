"""Vision: detector service and backends, tracking, rules, one typed ``Detections``.

Imports ``core`` only; never ``streams`` or ``api``.
"""
