"""Latency measurement of bundles (through tlc_runtime and through the bare backend)."""
