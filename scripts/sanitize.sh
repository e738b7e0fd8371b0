#!/usr/bin/env bash
# Memory-safety run: builds parewire._C with AddressSanitizer +
# UndefinedBehaviorSanitizer in a scratch copy of the working tree (the
# normal in-place build is left alone) and runs the whole test suite on it.
#
#   scripts/sanitize.sh                 # whole suite under ASan + UBSan
#   scripts/sanitize.sh tests/test_api.py -x   # extra args go to pytest
#
# Needs gcc (or clang: CC=clang) with libasan/libubsan.  CPython leaks by
# design, so leak detection is off; every other ASan/UBSan report aborts the
# run (halt_on_error, -fno-sanitize-recover).  The sanitizer runtime must be
# loaded before the interpreter's own malloc is used, hence LD_PRELOAD.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python}"
CC="${CC:-gcc}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/parewire-asan.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Tracked and untracked-but-not-ignored files: what the next commit would hold.
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$ROOT" && xargs -0 cp --parents -t "$WORK")

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
start=$(date +%s)
(
    cd "$WORK"
    CC="$CC" PAREWIRE_CFLAGS="-O1 -g $SAN" PAREWIRE_LDFLAGS="$SAN" \
        "$PY" setup.py -q build_ext --inplace >/dev/null
)
# Refuse to report "clean" for a build the sanitizers did not instrument.
nm -D "$WORK"/parewire/_C*.so | grep __asan_report_load >/dev/null || { echo "no ASan instrumentation" >&2; exit 1; }
nm -D "$WORK"/parewire/_C*.so | grep __ubsan_handle >/dev/null || { echo "no UBSan instrumentation" >&2; exit 1; }
LIBASAN="$("$CC" -print-file-name=libasan.so)"
[ "$CC" = clang ] && LIBASAN="$(clang -print-file-name=libclang_rt.asan-x86_64.so)"
# torch throws C++ exceptions: ASan can only intercept __cxa_throw if
# libstdc++ is loaded when ASan starts, not later with torch (else "CHECK
# failed: real___cxa_throw" aborts the first time torch raises).
PRELOAD="$LIBASAN $(g++ -print-file-name=libstdc++.so 2>/dev/null || "$CC" -print-file-name=libstdc++.so)"

cd "$WORK"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc   # let ASan see every Python allocation too
export PYTHONDONTWRITEBYTECODE=1
# cwd first on sys.path, so the sanitized copy shadows any editable install.
LD_PRELOAD="$PRELOAD" "$PY" -c 'import parewire, sys; assert parewire.__file__.startswith(sys.argv[1]), parewire.__file__' "$WORK"
# Canary: a capsule that lies about its memory must be caught at run time,
# or this run proves nothing.
CANARY='import numpy as np, capsules; from parewire import _C
a = np.zeros(64, np.float32)
_C.strength_stats(capsules.fabricate(shape=(4, 100), data=a).capsule)'
if (cd tests && PYTHONPATH="$WORK" LD_PRELOAD="$PRELOAD" "$PY" -c "$CANARY") >"$WORK/canary.log" 2>&1 ||
    ! grep heap-buffer-overflow "$WORK/canary.log" >/dev/null; then
    echo "sanitize.sh: ASan did not catch the canary overflow" >&2
    cat "$WORK/canary.log" >&2
    exit 1
fi
LD_PRELOAD="$PRELOAD" "$PY" -m pytest -q -p no:cacheprovider "${@:-tests}"
echo "sanitize.sh: clean in $(( $(date +%s) - start )) s (ASan + UBSan, $("$CC" --version | head -1))"
