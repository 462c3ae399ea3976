"""Metrics: statistics helpers and (later) the Prometheus catalogue."""
