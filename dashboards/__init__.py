"""Operator web console (served by the API), Grafana dashboards and Prometheus config."""
