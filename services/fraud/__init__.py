"""The fraud rules engine: pure functions, microseconds per call."""
