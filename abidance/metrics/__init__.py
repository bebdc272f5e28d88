"""Prometheus metrics of the node (docs/metrics.md)."""
