"""Model families, activations and the Lightning training module."""
