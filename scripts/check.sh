#!/usr/bin/env bash
# Code-quality checks, one per argument (default: all).  Each fails on the first problem it finds.
#
#   lint    ruff check + ruff format --check (rules: pyproject.toml [tool.ruff])          ~2 s
#   types   mypy --strict on parewire/ (pyproject.toml [tool.mypy]); tests/, benchmarks/ and
#           scripts/make_figures.py with the same checks on every body, without requiring
#           annotations on every test function                                            ~60 s
#   cstyle  clang-format --dry-run -Werror on csrc/ (.clang-format)                       ~1 s
#   tidy    clang-tidy on csrc/ (.clang-tidy: analyzer + a few bugprone checks)           ~30 s
#   docs    sphinx-build -W: the docs site, warnings are errors                           ~20 s
#
# Tools come from the environment (requirements-ci.txt pins them): PYTHON (default python3)
# runs ruff, mypy and sphinx as modules; clang-format and clang-tidy are taken from PATH or
# from the directory of PYTHON (the PyPI wheels install them there).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BIN=$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")
tool() { if [ -x "$BIN/$1" ]; then echo "$BIN/$1"; else command -v "$1"; fi; }

# Generated, so not held to the C layout (csrc/kernels/gen_ziggurat.py writes it).
GENERATED_C="csrc/kernels/ziggurat.h"

c_sources() {
    local f
    for f in csrc/*/*.c csrc/*/*.h; do
        case " $GENERATED_C " in *" $f "*) continue ;; esac
        echo "$f"
    done
}

lint() {
    "$PYTHON" -m ruff check .
    "$PYTHON" -m ruff format --check .
}

types() {
    "$PYTHON" -m mypy
    "$PYTHON" -m mypy --strict --allow-untyped-defs --allow-incomplete-defs --allow-untyped-calls \
        --check-untyped-defs tests/*.py benchmarks/*.py scripts/make_figures.py
}

cstyle() {
    # shellcheck disable=SC2046
    "$(tool clang-format)" --dry-run -Werror $(c_sources)
}

tidy() {
    local inc
    inc=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    # shellcheck disable=SC2046
    "$(tool clang-tidy)" --quiet $(c_sources | grep '\.c$') -- -std=c11 -I"$inc" -Icsrc/kernels
}

docs() {
    "$PYTHON" -m sphinx -W --keep-going -q -b html docs docs/_build/html
}

checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(lint types cstyle tidy docs)
for c in "${checks[@]}"; do
    case $c in
        lint | types | cstyle | tidy | docs) ;;
        *) echo "check.sh: unknown check '$c' (lint, types, cstyle, tidy, docs)" >&2; exit 2 ;;
    esac
    t=$SECONDS
    echo "--- check.sh $c"
    "$c"
    echo "--- check.sh $c: ok ($((SECONDS - t)) s)"
done
