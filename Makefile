# Two commands: `make demo` (the whole job on the built-in data) and
# `make test`. Both install what is missing first; a second run installs nothing.
PYTHON ?= python3
VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
ENV_STAMP := $(VENV)/.wise-env

.PHONY: env lint test test-fast demo bench clean-demo

env: $(ENV_STAMP)

$(ENV_STAMP): requirements.txt requirements/runtime.txt requirements/tests.txt pyproject.toml \
		tools/setup/install_env.sh tools/setup/build_mmcv.sh
	PYTHON=$(PYTHON) bash tools/setup/install_env.sh $(VENV)
	touch $@

# Style and import order (pyproject.toml), in seconds.
lint: env
	$(PY) -m ruff check projects tools tests bench configs
	$(PY) -m isort --check-only projects tools tests bench

# Lint, then every test on 2 workers (CI runs this through .ci/run).
test: lint
	$(PY) -m pytest tests -q -n 2 --dist loadfile

# The unit tests only: no training, no end-to-end tool runs (about a minute).
test-fast: env
	$(PY) -m pytest tests -q -m "not slow"

# ---- demo: the whole chain on built-in data; fresh stages are reused ----------
# (tools/pipeline.py demo --from STAGE reruns from a stage; see README)
demo: env
	$(PY) tools/pipeline.py demo

bench: env
	$(PY) bench/run.py

clean-demo:
	rm -rf data/shapes work_dirs/demo
