# Code-quality checks (scripts/check.sh says what each runs and how long it takes).
# Included by the Makefile; uses its $(VENV)/.stamp and $(PY).
.PHONY: checks lint types cstyle tidy docs

lint types cstyle tidy docs: $(VENV)/.stamp
	PYTHON=$(abspath $(PY)) scripts/check.sh $@

checks: $(VENV)/.stamp
	PYTHON=$(abspath $(PY)) scripts/check.sh
