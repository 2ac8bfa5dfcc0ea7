"""Operator web console, Grafana dashboards and Prometheus config (later issues)."""
