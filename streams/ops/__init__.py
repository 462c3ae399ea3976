"""Operator commands' Kafka-facing work: topic administration and reconciliation."""
