"""Helpers for developing and testing trustops on one machine."""
