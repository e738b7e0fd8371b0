# Everything a fresh clone needs: `make run` (the main job), `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

# CPythons (pyenv names or interpreter paths) the release wheel is tested on
WHEEL_PYTHONS ?= 3.9.18 3.13.0

# What `make sanitize` runs on the ASan+UBSan build: every test that reaches the C
# code (the model zoo, docs examples, reports, CLI, distributed and packaging
# tests exercise Python around the same calls, and run in `make test`).
SANITIZE_TESTS ?= tests/test_fixtures.py tests/test_api.py tests/test_bad_inputs.py \
	tests/test_bad_arguments.py tests/test_binding.py tests/test_interrupt.py tests/test_kernel_variants.py \
	tests/test_properties.py tests/test_threads.py tests/test_legacy.py tests/test_seeding.py tests/test_big.py \
	tests/test_equivalence.py tests/test_fast_sampler.py tests/test_model.py tests/test_inventory.py \
	tests/test_restore.py

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
	PYTHON=$(abspath $(PY)) scripts/sanitize.sh $(SANITIZE_TESTS)

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
