# Everything a fresh clone needs: `make run` (the main job), `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: run test sanitize memcheck clean

$(VENV)/.stamp: pyproject.toml setup.py requirements-ci.txt $(wildcard csrc/*/*.c csrc/*/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-ci.txt
	$(PY) -m pip install --quiet -e .
	touch $@

run: $(VENV)/.stamp
	$(VENV)/bin/parewire

test: $(VENV)/.stamp
	$(PY) -m pytest -q

sanitize: $(VENV)/.stamp
	PYTHON=$(abspath $(PY)) scripts/sanitize.sh

memcheck: $(VENV)/.stamp
	PYTHON=$(abspath $(PY)) scripts/kernel_check.sh

clean:
	rm -rf build $(VENV) parewire/*.so

include mk/checks.mk
