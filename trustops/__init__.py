"""trustops: an MLOps pipeline for models that must be trustworthy, not only accurate."""

import os

# smdebug 1.0.34 ships protobuf code generated for protobuf 3; it only loads under the
# pure-Python protobuf runtime, which must be chosen before protobuf is first imported.
# The install also drops a .pth file that sets this at interpreter start-up (see README).
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

__version__ = "0.1.0"
