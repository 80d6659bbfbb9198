"""ZenML pipelines: thin wiring of steps."""
