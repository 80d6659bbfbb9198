# The two commands of the README:  `make run`  and  `make test`.
# Both install first; the install is skipped while requirements/lock.txt and pyproject.toml are unchanged.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
INSTALLED := $(VENV)/.installed
# torch is pinned to 2.13.0+cpu, a build PyPI does not serve (PyPI's torch pulls CUDA wheels).
# It comes from a local wheel folder when there is one (this machine), else from PyTorch's own
# CPU index, added as an extra index next to PyPI.  unsafe-best-match lets each pinned version come
# from whichever index has it: torch==2.13.0+cpu exists only on the CPU index, everything else is
# on PyPI (uv's default first-index would take numpy & co. only from the PyTorch mirror, which
# lacks most pinned versions).
WHEELS      ?= /opt/wheels
# pytest-xdist workers for `make test`: most of the suite's time is real trustops processes that
# wait on imports, servers and disks, so two workers keep both CPU cores busy.  Whole files go to
# one worker (--dist loadfile), so module fixtures (a trained model, a server) are built once.
TEST_WORKERS ?= 2
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
INDEX_FLAGS := --index-strategy unsafe-best-match $(if $(wildcard $(WHEELS)),--find-links $(WHEELS),--extra-index-url $(TORCH_INDEX))
# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (this machine, CI) nothing writes .pyc files,
# so without it every command recompiles every module it imports (about 10 s per CLI call on 2 cores).
UV_SYNC_FLAGS := --python $(BIN)/python --compile-bytecode $(INDEX_FLAGS)

.PHONY: install run test test-fast bench lock ui clean-state

install: $(INSTALLED)

$(INSTALLED): requirements/lock.txt requirements/alibi-reference.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(UV) pip sync --quiet $(UV_SYNC_FLAGS) requirements/lock.txt
	$(UV) pip install --quiet $(UV_SYNC_FLAGS) --no-deps --no-build-isolation -e .
	$(UV) pip install --quiet $(UV_SYNC_FLAGS) --no-deps --target $(VENV)/alibi-reference -r requirements/alibi-reference.txt
	@$(BIN)/python -m trustops.install_hooks
	@! $(BIN)/python -m pip list 2>/dev/null | grep -iE '^(nvidia-|triton)' || (echo "CUDA packages were installed: the lock must keep torch CPU-only." >&2; exit 1)
	@touch $@

run: install
	$(BIN)/trustops run

test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: install
	$(BIN)/python -m pytest -m "not slow" --hypothesis-profile=fast

bench: install
	$(BIN)/python -m bench

lock:
	UV=$(UV) WHEELS=$(WHEELS) TORCH_INDEX=$(TORCH_INDEX) requirements/lock.sh

ui: install
	$(BIN)/trustops ui
