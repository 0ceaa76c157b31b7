# Two commands: `make demo` (the whole job on the built-in data) and
# `make test`. Both install what is missing first; a second run installs nothing.
PYTHON ?= python3
VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
# An env made where no GPU was visible has CPU-only mmcv ops: on a GPU machine (or with
# WISE_CUDA=1) the env is checked again, and mmcv rebuilt with its CUDA ops.
ENV_KIND := $(if $(filter 1,$(WISE_CUDA)),cuda,$(if $(filter 0,$(WISE_CUDA)),cpu,$(shell \
	nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)))
ENV_STAMP := $(VENV)/.wise-env-$(ENV_KIND)

.PHONY: env lint test test-fast demo demo-hard demo-tables demo-crowded sweep bench clean-demo \
        clean-demo-hard clean-demo-crowded

env: $(ENV_STAMP)

$(ENV_STAMP): requirements.txt requirements/runtime.txt requirements/tests.txt pyproject.toml \
		tools/setup/install_env.sh tools/setup/build_mmcv.sh tools/setup/mmcv_plan.py
	PYTHON=$(PYTHON) bash tools/setup/install_env.sh $(VENV)
	touch $@

# Style and import order (pyproject.toml), in seconds.
lint: env
	$(PY) -m ruff check projects tools tests bench configs
	$(PY) -m isort --check-only projects tools tests bench

# Lint, then every test on 2 workers (CI runs this through .ci/run).
test: lint
	$(PY) -m pytest tests -q -n 2 --dist loadfile

# The unit tests only: no training, no end-to-end tool runs (about 40 s on 2 workers).
test-fast: env
	$(PY) -m pytest tests -q -m "not slow" -n 2 --dist loadfile

# ---- demo: the whole chain on built-in data; fresh stages are reused ----------
# (tools/pipeline.py demo --from STAGE reruns from a stage; see README)
demo: env
	$(PY) tools/pipeline.py demo

# The same chain on the hard variant (photographs, distractors: a PRM that over-fires)
demo-hard: env
	$(PY) tools/pipeline.py demo-hard

# Both built-in tables, the demo's and the hard variant's, as means ± sd over seeds
# (hours on 2 cores; fresh stages are reused): `make demo-tables SEEDS="0 1"` for others
SEEDS ?= 0 1 2
demo-tables: env
	$(PY) tools/pipeline.py demo --seeds $(SEEDS)
	$(PY) tools/pipeline.py demo-hard --seeds $(SEEDS)
	@cat work_dirs/demo/results.md work_dirs/demo-hard/results.md

# Many instances of few classes an image: PRM + Density and WISE + counts (docs/counts.md)
demo-crowded: env
	$(PY) tools/pipeline.py demo-crowded

# The defaults on drawn variants nobody chose them on (docs/sweep.md; about an hour)
sweep: env
	$(PY) tools/pipeline.py sweep --seeds $(SEEDS)

bench: env
	$(PY) bench/run.py

clean-demo:
	rm -rf data/shapes work_dirs/demo

clean-demo-hard:
	rm -rf data/shapes-hard work_dirs/demo-hard

clean-demo-crowded:
	rm -rf data/shapes-crowded work_dirs/demo-crowded
