#!/usr/bin/env bash
# Release check: `python -m build` makes an sdist and, from it, one cp39-abi3
# wheel; scripts/check_dist.py checks their names, tags, metadata and
# contents.  Each Python named on the command line then gets a fresh venv with
# the wheel (and torch from PyPI, pinned in scripts/wheel-test-requirements.txt)
# installed, and runs the tests *from the unpacked sdist*, in a folder outside
# any source tree, so they exercise the installed wheel.
#
#   scripts/check_dist.sh                  # build and check the distributions
#   scripts/check_dist.sh 3.9.18 3.13.0    # ... then test the wheel on these
#                                          #     pyenv Pythons (or give paths)
#   TESTS="tests/test_api.py" scripts/check_dist.sh 3.9.18   # other tests
#
# PYTHON (default: python) must have the `build` package; abi3audit, when
# installed there, checks that _C uses only the stable ABI of CPython 3.9.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python}"
# The binding and the drop-in API (test_cli puts the source tree on
# PYTHONPATH for its children, so it cannot test an installed wheel).
TESTS="${TESTS:-tests/test_binding.py tests/test_packaging.py tests/test_interrupt.py tests/test_fixtures.py
tests/test_api.py tests/test_legacy.py tests/test_seeding.py tests/test_bad_inputs.py tests/test_bad_arguments.py
tests/test_threads.py tests/test_properties.py}"
# torch < 2.9 cannot export float8 tensors through DLPack, which
# test_bad_inputs' float8 x _C cases need (they run in the 3.11 suite).
SELECT="${SELECT:-not (float8_e and _C)}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/parewire-dist.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT

t=$(date +%s)
"$PY" -m build --outdir "$OUT/dist" "$ROOT" >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
"$PY" "$ROOT/scripts/check_dist.py" "$OUT/dist" "$ROOT"
if "$PY" -m abi3audit --help >/dev/null 2>&1; then
    "$PY" -m abi3audit --strict --assume-minimum-abi3 3.9 "$OUT"/dist/*.whl >"$OUT/abi3audit.log" 2>&1 ||
        { cat "$OUT/abi3audit.log"; exit 1; }
    audit="abi3audit: stable ABI 3.9 only"
else
    audit="abi3audit not installed: ABI not audited"
fi
echo "check_dist: $(cd "$OUT/dist" && ls | tr '\n' ' ')right ($audit) in $(( $(date +%s) - t )) s"

WHEEL="$(ls "$OUT"/dist/*.whl)"
mkdir -p "$OUT/sdist" "$OUT/elsewhere"
tar xzf "$OUT"/dist/*.tar.gz -C "$OUT/sdist" --strip-components=1
for want in "$@"; do
    t=$(date +%s)
    base="$want"
    [ -x "$base" ] || base="${PYENV_ROOT:-$HOME/.pyenv}/versions/$want/bin/python"
    venv="$OUT/venv-$(basename "$want")"
    "$base" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$WHEEL" \
        -r "$ROOT/scripts/wheel-test-requirements.txt" 2>&1 | { grep -v "^WARNING: Location" || true; }
    installed=$(( $(date +%s) - t ))
    # $OUT/elsewhere: no parewire/ folder beside the tests' working directory
    (
        cd "$OUT/elsewhere"
        "$venv/bin/python" -c 'import sys, parewire, parewire._C as C
assert "site-packages" in parewire.__file__, parewire.__file__
print(f"check_dist: Python {sys.version.split()[0]}: {C.__file__}")'
        # shellcheck disable=SC2086  # TESTS is a list of paths
        "$venv/bin/python" -m pytest -q -p no:cacheprovider -k "$SELECT" $(printf "$OUT/sdist/%s " $TESTS)
    )
    echo "check_dist: wheel tested on $("$venv/bin/python" -V) in $(( $(date +%s) - t )) s" \
         "(venv and torch $installed s)"
    rm -rf "$venv"
done
