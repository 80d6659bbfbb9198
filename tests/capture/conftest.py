"""The capture tests use the session-wide SeaweedFS server and the ``s3_env`` / ``s3_bucket`` fixtures of ``tests/conftest.py``."""
