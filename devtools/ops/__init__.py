"""Ops tooling: the Grafana dashboard made from the ops panels."""
