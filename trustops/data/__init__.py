"""Data: the built-in data sets (embedded digits, Fashion-MNIST from Debian's package), user data loading, splitting and validation."""
