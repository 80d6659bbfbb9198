"""Training: tensors from tables, the Lightning module, and DP-SGD wiring."""
