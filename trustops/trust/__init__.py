"""Trust evaluations that compare models: reproducibility (prediction difference) and robustness."""
