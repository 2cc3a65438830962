"""Prometheus metrics for chatgate (names documented in the README)."""
