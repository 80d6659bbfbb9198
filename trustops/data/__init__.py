"""Data: the embedded default data set, user data loading, splitting and validation."""
