"""Latent-space adversarial detection (LADIS): MMD tests on captured activations."""
