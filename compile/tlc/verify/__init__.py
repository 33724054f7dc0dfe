"""Accuracy verification of bundles against the reference PyTorch model."""
