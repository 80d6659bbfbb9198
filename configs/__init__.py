"""Hydra-zen configs for trustops; see :mod:`configs.training`."""
