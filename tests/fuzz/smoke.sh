#!/bin/bash
# tests/fuzz/smoke.sh — a short run of every fuzz target over its seed corpus.
#
# Builds the targets first (tests/fuzz/build.sh) when any is missing or
# older than its sources.  Each target runs FUZZ_RUNS inputs (default 20000)
# or at most FUZZ_SECONDS seconds (default 30), starting from
# tests/fuzz/corpus/<target without "fuzz_">/.  New inputs go to a
# temporary directory, never into the committed corpus.
#
# Files under tests/fuzz/regress/<target without "fuzz_">/ (inputs that
# once found a bug) are replayed before the run.
#
# Prints one line per target: "PASS fuzz_x (N runs)", "FAIL fuzz_x" (with
# the end of libFuzzer's log and where the crashing input was saved) or
# "SKIP fuzz_x: reason".  Exit status 1 if any target failed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
export BUILD
RUNS=${FUZZ_RUNS:-20000}
SECS=${FUZZ_SECONDS:-30}
TARGETS=()
declare -A SRCS=()
for src in tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    TARGETS+=("$t")
    SRCS[$t]="$src tests/fuzz/fuzz_common.h $(sed -n 's|^// fuzz-sources:||p' "$src" | head -n 1)"
done

stale=0
for t in "${TARGETS[@]}"; do
    bin=$BUILD/fuzz/$t
    [ -x "$bin" ] || { stale=1; break; }
    for s in ${SRCS[$t]}; do
        [ "$s" -nt "$bin" ] && stale=1
    done
done
build_msg=""
if [ "$stale" = 1 ]; then
    build_msg=$(tests/fuzz/build.sh 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "$build_msg" | tail -n 20 | sed 's/^/    | /'
        for t in "${TARGETS[@]}"; do echo "FAIL $t (build failed)"; done
        exit 1
    fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmgate-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=0
for t in "${TARGETS[@]}"; do
    bin=$BUILD/fuzz/$t
    if [ ! -x "$bin" ]; then
        reason=$(echo "$build_msg" | sed -n 's/^SKIP fuzz build: //p' | head -n 1)
        echo "SKIP $t: ${reason:-not built}"
        continue
    fi
    corpus=tests/fuzz/corpus/${t#fuzz_}
    mkdir -p "$tmp/$t.new" "$tmp/$t.art"
    # Inputs that once crashed the target (tests/fuzz/regress/<name>/) are
    # replayed one by one first: a fix that regresses fails here.
    regress=()
    for f in tests/fuzz/regress/${t#fuzz_}/*; do
        [ -f "$f" ] && regress+=("$f")
    done
    if [ ${#regress[@]} -gt 0 ]; then
        rlog=$tmp/$t.regress.log
        if ! timeout -k 5 120 "$bin" -timeout=10 -rss_limit_mb=2048 "${regress[@]}" >"$rlog" 2>&1 </dev/null; then
            failed=1
            echo "FAIL $t (a regression input in tests/fuzz/regress/${t#fuzz_}/ fails again)"
            tail -n 40 "$rlog" | sed 's/^/    | /'
            continue
        fi
    fi
    dirs=("$tmp/$t.new")
    [ -d "$corpus" ] && dirs+=("$corpus")
    log=$tmp/$t.log
    timeout -k 5 $((SECS + 60)) "$bin" -runs="$RUNS" -max_total_time="$SECS" -max_len=8192 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$tmp/$t.art/" "${dirs[@]}" >"$log" 2>&1 </dev/null
    rc=$?
    if [ $rc -eq 0 ]; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        echo "PASS $t (${runs:-?} runs)"
    else
        failed=1
        echo "FAIL $t (exit status $rc)"
        tail -n 40 "$log" | sed 's/^/    | /'
        for a in "$tmp/$t.art"/*; do
            [ -f "$a" ] || continue
            mkdir -p "$BUILD/fuzz/crashes"
            cp "$a" "$BUILD/fuzz/crashes/$t-$(basename "$a")"
            echo "    crashing input saved as $BUILD/fuzz/crashes/$t-$(basename "$a")"
        done
    fi
done
exit $failed
