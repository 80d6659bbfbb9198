"""Post-install step run by ``make install``.

Writes a ``.pth`` file into the environment's site-packages that selects protobuf's
pure-Python runtime at interpreter start-up.  smdebug's generated protobuf modules only
load under that runtime, and the choice is fixed the moment protobuf is first imported
by anything (MLflow, ZenML, a test runner), so an import-time setting inside trustops
alone would lose the race for entry points such as ``mlflow models serve`` or ``pytest``.
"""

import site
from pathlib import Path

PTH_NAME = "trustops_protobuf_runtime.pth"
PTH_LINE = "import os; os.environ.setdefault('PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION', 'python')\n"


def install_protobuf_runtime_hook() -> Path:
    target = Path(site.getsitepackages()[0]) / PTH_NAME
    target.write_text(PTH_LINE)
    return target


if __name__ == "__main__":
    install_protobuf_runtime_hook()
