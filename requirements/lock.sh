#!/usr/bin/env bash
# Re-resolve requirements/main.in into requirements/lock.txt.
# smdebug, rai-toolbox and pyinstrument are appended unresolved: smdebug pins protobuf<=3.20.3
# (MLflow and ZenML need a newer one) and rai-toolbox pulls torchvision, which would pull another
# torch. `uv pip sync` installs exactly the listed versions, so neither brings its own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
"$uv" pip compile requirements/main.in --python-version 3.11 --find-links /opt/wheels \
  --index-strategy unsafe-best-match --no-header -o requirements/lock.txt
cat requirements/no-deps.txt >> requirements/lock.txt
