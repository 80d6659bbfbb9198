"""Serving with capture: the MLflow pyfunc (``pyfunc``) and batch scoring (``predict``)."""
