#!/usr/bin/env bash
# Memory checks below the Python test suite (scripts/sanitize.sh runs the suite):
#  1. scripts/kernel_fuzz.c, the kernels alone on random layouts, under
#     AddressSanitizer + UndefinedBehaviorSanitizer;
#  2. the same harness, unsanitized, under valgrind memcheck;
#  3. scripts/valgrind_binding.py (binding + kernels, numpy only) under
#     valgrind; CPython's own well-known reports are ignored, any report
#     whose stack passes through parewire fails the run.
#
#   scripts/kernel_check.sh [fuzz cases, default 20000]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python}"
CC="${CC:-gcc}"
CASES="${1:-20000}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/parewire-check.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT
cd "$ROOT"
SRC=(scripts/kernel_fuzz.c csrc/kernels/*.c)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

t=$(date +%s)
"$CC" -std=c11 -O1 -g -Wall -Wextra $SAN "${SRC[@]}" -lm -o "$OUT/fuzz_san"
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 "$OUT/fuzz_san" "$CASES"
echo "kernel_check: ASan+UBSan fuzz clean in $(( $(date +%s) - t )) s"

t=$(date +%s)
"$CC" -std=c11 -O2 -g "${SRC[@]}" -lm -o "$OUT/fuzz_plain"
valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite "$OUT/fuzz_plain" $(( CASES / 20 ))
echo "kernel_check: valgrind fuzz clean in $(( $(date +%s) - t )) s"

t=$(date +%s)
status=0
PYTHONPATH="$PWD:$PWD/tests" PYTHONMALLOC=malloc valgrind --error-exitcode=9 "$PY" scripts/valgrind_binding.py >"$OUT/vg.log" 2>&1 || status=$?
grep "valgrind_binding:" "$OUT/vg.log" || { cat "$OUT/vg.log"; exit 1; }
# one report per block between '==PID== ' separator lines
ours=$(awk '/^==[0-9]+== $/ { if (b ~ /_C\.(cpython|abi3)|[^a-z_]pw_|borrow_tensor|release_tensor|rewire_worker|run_polling|cancel_flag|csrc/) { print b; n++ } b = ""; next }
            { b = b "\n" $0 } END { exit n > 0 }' "$OUT/vg.log") || { echo "$ours"; echo "kernel_check: valgrind found errors in parewire" >&2; exit 1; }
echo "kernel_check: valgrind binding clean in $(( $(date +%s) - t )) s" \
     "(exit $status: $(grep -c '^==[0-9]*== [A-Z]' "$OUT/vg.log" || true) CPython-internal report lines ignored)"
