# Everything a fresh clone needs: `make run` (the main job), `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

# CPythons (pyenv names or interpreter paths) the release wheel is tested on
WHEEL_PYTHONS ?= 3.9.18 3.13.0

.PHONY: run test stubs sanitize memcheck dist portability clean

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

stubs: $(VENV)/.stamp
	$(PY) -m mypy.stubtest --mypy-config-file scripts/stubtest.ini parewire._C

dist: $(VENV)/.stamp
	PYTHON=$(abspath $(PY)) scripts/check_dist.sh $(WHEEL_PYTHONS)

portability: $(VENV)/.stamp
	PYTHON=$(abspath $(PY)) scripts/portability.sh

clean:
	rm -rf build $(VENV) parewire/*.so

include mk/checks.mk
