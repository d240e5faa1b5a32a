#!/bin/sh
# tests/fuzz/build.sh — build the libFuzzer targets into $BUILD/fuzz/
# (BUILD defaults to build, relative to the repository root).
#
#   one target per tests/fuzz/fuzz_*.c (see the fuzz-sources lines in each)
#
# Needs clang with libFuzzer (Debian 12: the clang package ships
# libclang_rt.fuzzer).  Without it this prints "SKIP fuzz build: <reason>"
# and exits 0 so the rest of `make check` still runs; FUZZ_STRICT=1 turns
# that into exit 1.  FUZZ_CC overrides the compiler, FUZZ_CFLAGS adds flags.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz
FUZZ_CC=${FUZZ_CC:-clang}
FLAGS="-std=c17 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Wall -Wextra -Werror -Wno-unused-parameter -I. ${FUZZ_CFLAGS:-}"

skip() {
    echo "SKIP fuzz build: $1"
    if [ "${FUZZ_STRICT:-0}" = 1 ]; then exit 1; fi
    exit 0
}

command -v "$FUZZ_CC" >/dev/null 2>&1 || skip "$FUZZ_CC not found"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmgate-fuzzbuild.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/probe.c" <<'PROBE'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
PROBE
# shellcheck disable=SC2086
if ! $FUZZ_CC $FLAGS "$tmp/probe.c" -o "$tmp/probe" >"$tmp/log" 2>&1; then
    skip "$FUZZ_CC cannot build with -fsanitize=fuzzer: $(head -n 1 "$tmp/log")"
fi

mkdir -p "$OUT"
build() {
    name=$1
    shift
    echo "  FUZZ    $OUT/$name"
    # shellcheck disable=SC2086
    $FUZZ_CC $FLAGS -o "$OUT/$name" "$@"
}
# Every tests/fuzz/fuzz_NAME.c is a target; its first lines name what it links:
#   // fuzz-sources: proxy/rfbmsg.c ...
#   // fuzz-libs: -lz ...
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    srcs=$(sed -n 's|^// fuzz-sources:||p' "$src" | head -n 1)
    libs=$(sed -n 's|^// fuzz-libs:||p' "$src" | head -n 1)
    # shellcheck disable=SC2086
    build "$name" "$src" $srcs $libs
done
