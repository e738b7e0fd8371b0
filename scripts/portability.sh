#!/usr/bin/env bash
# Portable kernels, proven: builds the kernels with the known-answer harness
# (scripts/kat.c) in compiler / instruction-set / arithmetic variants, on
# x86-64 and, cross-compiled, on aarch64 under qemu-user, and checks that
# every variant reproduces the fixtures bit for bit and prints the same
# digests (of rewired bits and of strength statistics) as the reference
# build, gcc with setup.py's flags.  The kernel fuzz (scripts/kernel_fuzz.c)
# also runs on aarch64.
#
# Variants marked "shown" are not required to match: they show what
# floating-point contraction (FMA) would change if a build allowed it, which
# is why setup.py passes -ffp-contract=off.
#
#   scripts/portability.sh            # installs clang, the aarch64 gcc and
#                                     # qemu-user with apt-get when missing (root)
#
# PYTHON (default: python, with numpy) checks that tests/data/fixtures.kat
# matches tests/data/*.npz first.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/parewire-port.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT
cd "$ROOT"
start=$(date +%s)

missing=()
for tool in gcc clang aarch64-linux-gnu-gcc qemu-aarch64; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "portability: installing clang, gcc-aarch64-linux-gnu, qemu-user (missing: ${missing[*]})"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
            qemu-user >"$OUT/apt.log" 2>&1 || { cat "$OUT/apt.log"; exit 1; }
    else
        echo "portability: missing ${missing[*]}; install clang gcc-aarch64-linux-gnu qemu-user" >&2
        exit 1
    fi
fi
"$PY" scripts/export_fixtures.py --check

KERNELS=(csrc/kernels/*.c)
FIXTURES=tests/data/fixtures.kat
BASE=(-std=c11 -O3 -Wall -Wextra)
has_cpu() { grep -qw "$1" /proc/cpuinfo; }
has_switch() { grep -rq "$1" csrc/kernels; }

ref=""
failures=0
printf '%-22s %-52s %-17s %-17s %s\n' variant flags rewire strength verdict
# variant NAME required|shown RUNNER CC FLAGS...  (RUNNER: native, qemu, or a reason to skip running)
variant() {
    local name=$1 role=$2 runner=$3 cc=$4
    shift 4
    local t line rw st verdict
    t=$(date +%s%N)
    if ! $cc "${BASE[@]}" "$@" scripts/kat.c "${KERNELS[@]}" -lm -o "$OUT/kat-$name" 2>"$OUT/$name.log"; then
        cat "$OUT/$name.log" >&2
        printf '%-22s %-52s build FAILED\n' "$name" "$*"
        failures=$((failures + 1))
        return
    fi
    [ -s "$OUT/$name.log" ] && sed "s/^/  $name: /" "$OUT/$name.log"  # warnings
    case $runner in
        native) line=$("$OUT/kat-$name" "$FIXTURES") || { echo "$line"; failures=$((failures + 1)); } ;;
        qemu) line=$(qemu-aarch64 "$OUT/kat-$name" "$FIXTURES") || { echo "$line"; failures=$((failures + 1)); } ;;
        *) printf '%-22s %-52s built; not run: %s\n' "$name" "$*" "$runner"; return ;;
    esac
    rw=$(sed -n 's/.*rewire digest \([0-9a-f]*\).*/\1/p' <<<"$line")
    st=$(sed -n 's/.*strength digest \([0-9a-f]*\).*/\1/p' <<<"$line")
    [ -n "$ref" ] || ref="$rw $st"
    if [ "$rw $st" = "$ref" ]; then
        verdict="same bits"
    elif [ "$role" = shown ]; then
        verdict="differs ($([ "$rw" = "${ref% *}" ] && echo "strength statistics only" || echo "rewired bits too"))"
    else
        verdict="DIFFERENT BITS"
        failures=$((failures + 1))
    fi
    t=$(( ($(date +%s%N) - t) / 100000000 ))
    printf '%-22s %-52s %-17s %-17s %s (%d.%d s)\n' "$name" "$*" "$rw" "$st" "$verdict" $((t / 10)) $((t % 10))
}

NOFMA=-ffp-contract=off
variant gcc required native gcc $NOFMA
variant gcc-O0 required native gcc $NOFMA -O0
variant clang required native clang $NOFMA
variant gcc-haswell required native gcc $NOFMA -march=haswell
variant clang-haswell required native clang $NOFMA -march=haswell
if has_cpu avx512f; then avx512=native; else avx512="this CPU has no AVX-512"; fi
variant gcc-avx512 required "$avx512" gcc $NOFMA -march=skylake-avx512
variant clang-avx512 required "$avx512" clang $NOFMA -march=skylake-avx512
variant gcc-emulated-u128 required native gcc $NOFMA -DPW_EMULATE_UINT128
if has_switch PW_NO_SIMD; then
    variant gcc-no-simd required native gcc $NOFMA -DPW_NO_SIMD
else
    echo "gcc-no-simd            skipped: the kernels have no PW_NO_SIMD switch yet"
fi
variant aarch64-gcc required qemu aarch64-linux-gnu-gcc $NOFMA -static
variant aarch64-clang required qemu clang --target=aarch64-linux-gnu $NOFMA -static
variant aarch64-gcc-u128emu required qemu aarch64-linux-gnu-gcc $NOFMA -static -DPW_EMULATE_UINT128
# what contraction would do (clang's default is -ffp-contract=on, gcc's in GNU C mode =fast)
variant clang-haswell-fma shown native clang -ffp-contract=fast -march=haswell
variant gcc-haswell-fma shown native gcc -std=gnu11 -ffp-contract=fast -march=haswell
variant aarch64-clang-default shown qemu clang --target=aarch64-linux-gnu -static

# The kernel fuzz as its author wrote it, on aarch64 (gcc and clang), beside
# the same cases on x86-64: each must pass, and print the same summary.
CASES=3000
t=$(date +%s)
gcc "${BASE[@]}" $NOFMA scripts/kernel_fuzz.c "${KERNELS[@]}" -lm -o "$OUT/fuzz-x86"
aarch64-linux-gnu-gcc "${BASE[@]}" $NOFMA -static scripts/kernel_fuzz.c "${KERNELS[@]}" -lm -o "$OUT/fuzz-a64-gcc"
clang --target=aarch64-linux-gnu "${BASE[@]}" $NOFMA -static scripts/kernel_fuzz.c "${KERNELS[@]}" -lm \
    -o "$OUT/fuzz-a64-clang"
x86=$("$OUT/fuzz-x86" "$CASES")
for f in fuzz-a64-gcc fuzz-a64-clang; do
    a64=$(qemu-aarch64 "$OUT/$f" "$CASES") || { echo "$a64"; failures=$((failures + 1)); continue; }
    if [ "$a64" != "$x86" ]; then
        echo "portability: $f printed '$a64', x86-64 printed '$x86'"
        failures=$((failures + 1))
    fi
done
echo "portability: kernel_fuzz $CASES cases on aarch64 (gcc, clang) under qemu as on x86-64: $x86 ($(( $(date +%s) - t )) s)"

if [ "$failures" -gt 0 ]; then
    echo "portability: $failures variant(s) failed" >&2
    exit 1
fi
echo "portability: every required variant reproduces the fixtures and the reference digests" \
     "in $(( $(date +%s) - start )) s"
