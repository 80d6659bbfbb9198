#!/usr/bin/env bash
# Re-resolve requirements/main.in into requirements/lock.txt (`make lock`).
# torch==2.13.0+cpu resolves from the local wheel folder $WHEELS when it exists, else from PyTorch's
# CPU index $TORCH_INDEX as an extra index next to PyPI: the same sources `make install` uses.
# smdebug, rai-toolbox and pyinstrument are appended unresolved: smdebug pins protobuf<=3.20.3
# (MLflow and ZenML need a newer one) and rai-toolbox pulls torchvision, which would pull another
# torch. `uv pip sync` installs exactly the listed versions, so neither brings its own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
wheels=${WHEELS:-/opt/wheels}
torch_index=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
if [ -d "$wheels" ]; then
  sources=(--find-links "$wheels")
else
  sources=(--extra-index-url "$torch_index")
fi
"$uv" pip compile requirements/main.in --python-version 3.11 "${sources[@]}" \
  --index-strategy unsafe-best-match --no-header -o requirements/lock.txt
cat requirements/no-deps.txt >> requirements/lock.txt
if ! grep -qx 'torch==2.13.0+cpu' requirements/lock.txt || grep -qiE '^(nvidia-|triton)' requirements/lock.txt; then
  echo "lock.sh: the lock must pin torch==2.13.0+cpu and no CUDA package" >&2
  exit 1
fi
