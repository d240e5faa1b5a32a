#!/bin/bash
# tests/fuzz/campaign.sh — the long fuzzing run behind `make fuzz`.
#
# Builds every target (tests/fuzz/build.sh, FUZZ_STRICT=1: no clang is an
# error here), then runs them one at a time, single process, under
# `nice -n 19`, each until FUZZ_RUNS executions (default 10^7) or
# FUZZ_TIME seconds (default 1800), whichever comes first.  FUZZ_TARGETS
# (space separated, with or without the fuzz_ prefix) picks a subset.
#
# Each target starts from tests/fuzz/corpus/<name>/ plus a scratch
# directory; at the end the union is minimized with -merge=1 and written
# back to tests/fuzz/corpus/<name>/ (FUZZ_MERGE=0 leaves the repo alone).
# A crash stops that target; its input is kept in $BUILD/fuzz/crashes/ —
# to commit one, reduce it and put it under tests/fuzz/regress/<name>/,
# which smoke.sh replays.
#
# Prints one line per target and writes the same as a table to
# $BUILD/fuzz/campaign.tsv: target, runs, seconds, exec/s, cov, ft,
# corpus files, result.  Exit status 1 if any target crashed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
export BUILD
RUNS=${FUZZ_RUNS:-10000000}
SECS=${FUZZ_TIME:-1800}
MERGE=${FUZZ_MERGE:-1}
NICE=${FUZZ_NICE:-nice -n 19}

# shellcheck disable=SC2086
FUZZ_STRICT=1 $NICE tests/fuzz/build.sh || exit 1

if [ -n "${FUZZ_TARGETS:-}" ]; then
    targets=()
    for t in $FUZZ_TARGETS; do targets+=("fuzz_${t#fuzz_}"); done
else
    targets=()
    for src in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
fi

work=$BUILD/fuzz/campaign
mkdir -p "$work" "$BUILD/fuzz/crashes"
tsv=$BUILD/fuzz/campaign.tsv
[ -f "$tsv" ] || printf 'target\truns\tseconds\texec/s\tcov\tft\tcorpus\tresult\n' >"$tsv"
failed=0
for t in "${targets[@]}"; do
    bin=$BUILD/fuzz/$t
    [ -x "$bin" ] || { echo "FAIL $t: no such target"; failed=1; continue; }
    name=${t#fuzz_}
    corpus=tests/fuzz/corpus/$name
    mkdir -p "$corpus"
    rm -rf "$work/$name" && mkdir -p "$work/$name/new" "$work/$name/art"
    log=$work/$name/fuzz.log
    t0=$(date +%s)
    # shellcheck disable=SC2086
    timeout -k 10 $((SECS + 120)) $NICE "$bin" -runs="$RUNS" -max_total_time="$SECS" \
        -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/$name/art/" "$work/$name/new" "$corpus" >"$log" 2>&1 </dev/null
    rc=$?
    t1=$(date +%s)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    result=ok
    if [ $rc -ne 0 ]; then
        result="crash (exit $rc)"
        failed=1
        tail -n 40 "$log" | sed 's/^/    | /'
        for a in "$work/$name/art"/*; do
            [ -f "$a" ] || continue
            cp "$a" "$BUILD/fuzz/crashes/$t-$(basename "$a")"
            echo "    crashing input saved as $BUILD/fuzz/crashes/$t-$(basename "$a")"
        done
    fi
    if [ "$MERGE" = 1 ]; then
        rm -rf "$work/$name/min" && mkdir -p "$work/$name/min"
        # shellcheck disable=SC2086
        if $NICE "$bin" -merge=1 -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
            "$work/$name/min" "$corpus" "$work/$name/new" >"$work/$name/merge.log" 2>&1 </dev/null; then
            rm -rf "$corpus" && mv "$work/$name/min" "$corpus"
        else
            echo "    merge failed, corpus left as it was (see $work/$name/merge.log)"
        fi
    fi
    files=$(find "$corpus" -type f | wc -l)
    line="$t	${runs:-?}	$((t1 - t0))	${eps:-?}	${cov:-?}	${ft:-?}	$files	$result"
    printf '%s\n' "$line" >>"$tsv"
    echo "$line" | awk -F'\t' '{printf "%-8s %s: %s runs in %ss (%s exec/s), cov %s ft %s, corpus %s files\n",
        ($8 == "ok" ? "PASS" : "FAIL"), $1, $2, $3, $4, $5, $6, $7}'
done
exit $failed
