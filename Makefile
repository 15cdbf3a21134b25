# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Everything is installed into .venv/ in the repository root; nothing is cached outside it.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.ucluster-installed
HOROVOD_STAMP := $(VENV)/.horovod-built
DEMO_DIR ?= runs/demo
HOROVOD_ENV := HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1

.PHONY: install test demo demo-anomaly bench lint clean-venv

install: $(STAMP)

# Python packages (TensorFlow first: Horovod compiles against the installed TensorFlow).
$(STAMP): setup.cfg pyproject.toml $(HOROVOD_STAMP)
	$(PIP) install --no-cache-dir -e '.[dev]'
	$(PIP) check
	$(PY) -c "import horovod.tensorflow as hvd, keras, pyspark, pythia8mc, fastjet, mlflow, optuna; assert hvd.gloo_built(), 'Horovod built without Gloo'"
	touch $@

$(HOROVOD_STAMP): setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --no-cache-dir --upgrade pip setuptools wheel
	$(PIP) install --no-cache-dir -e '.[dev]'
	$(PY) -c "import horovod.tensorflow" 2>/dev/null || \
		$(HOROVOD_ENV) $(PIP) install --no-cache-dir --no-build-isolation horovod==0.28.1
	$(PY) -c "import horovod.tensorflow as hvd; assert hvd.gloo_built() and hvd.tensorflow_built() if hasattr(hvd, 'tensorflow_built') else hvd.gloo_built()"
	touch $@

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest tests

demo: install
	$(PY) -m jobs.demo --out $(DEMO_DIR)

# Anomaly mode: UCluster on whole events (QCD dijets with an injected W' -> WZ signal); a few minutes on 2 cores.
demo-anomaly: install
	$(PY) -m jobs.demo_anomaly --out runs/demo_anomaly

bench: install
	$(PY) -m studies.benchmark

lint: install
	$(PY) -m ruff check .

clean-venv:
	rm -rf $(VENV)
