#!/bin/bash
# tests/run.sh — run vmgate's tests: unit (cmocka), integration, fuzz smoke.
#
#   tests/run.sh [PATTERN...]      only tests whose name matches one PATTERN (bash regex,
#                                   e.g. "config" or "t1[03]"); default: all
#
# Environment: BUILD (default build), TEST_TIMEOUT (seconds per integration
# test, default 300), KEEP_TMP=1 (integration tests keep their temp dirs),
# VERBOSE=1 (print every test's output, not only on failure).
#
# Prints one line per test: "PASS name", "FAIL name", "SKIP name: reason",
# then exactly "N passed, N failed, N skipped".  Unit test binaries count
# each cmocka test; a crashed binary counts as one failure.  Exit status 1 if
# anything failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
export BUILD
export VMGATE_ROOT=$ROOT
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export BUILD
export VMGATE=${VMGATE:-$BUILD/vmgate}
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
PATTERNS=("$@")

passed=0 failed=0 skipped=0
RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/vmgate-run.XXXXXX")
trap 'rm -rf "$RUNDIR"' EXIT
t_start=$(date +%s)

selected() {
    local name=$1 p
    [ ${#PATTERNS[@]} -eq 0 ] && return 0
    for p in "${PATTERNS[@]}"; do
        [[ $name =~ $p ]] && return 0
    done
    return 1
}

show_output() {   # FILE [LINES]
    local f=$1 n=${2:-150} total
    total=$(wc -l <"$f")
    if [ "$total" -gt "$n" ]; then
        echo "    ... ($((total - n)) earlier lines not shown; full log: rerun with KEEP_TMP=1 VERBOSE=1)"
    fi
    tail -n "$n" "$f" | sed 's/^/    | /'
}

# ---------------------------------------------------------------- unit tests
run_unit() {   # BIN
    local bin=$1 name out rc p f s envf
    name=$(basename "$bin")
    out="$RUNDIR/$name.out"
    envf="tests/unit/$name.env"
    { (
        if [ -f "$envf" ]; then
            set -a
            # shellcheck disable=SC1090
            . "$envf"
            set +a
        fi
        unset CMOCKA_MESSAGE_OUTPUT CMOCKA_XML_FILE
        exec timeout -k 5 "$TEST_TIMEOUT" "$bin"
    ) >"$out" 2>&1 </dev/null; } 2>/dev/null   # (no "Segmentation fault" job notice here)
    rc=$?
    # cmocka: "[  PASSED  ] N test(s)."  "[  FAILED  ] N test(s), listed below:"  "[  SKIPPED ] N test(s)..."
    p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9][0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1   # crashed, timed out, or failed outside a cmocka test
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [ "$f" -eq 0 ]; then
        if [ "$s" -gt 0 ]; then echo "PASS $name ($p tests, $s skipped)"; else echo "PASS $name ($p tests)"; fi
        [ "${VERBOSE:-0}" = 1 ] && show_output "$out"
    else
        echo "FAIL $name ($p passed, $f failed, exit status $rc)"
        grep -E '^\[  (FAILED|ERROR) +\] [A-Za-z_]' "$out" | sort -u | sed 's/^/    /' || true
        show_output "$out" 80
    fi
}

shopt -s nullglob
for bin in "$BUILD"/tests/test_*; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    selected "$(basename "$bin")" || continue
    run_unit "$bin"
done

# --------------------------------------------------------- integration tests
run_integration() {   # SCRIPT
    local script=$1 name out rc reason t0 t1 pid
    name=$(basename "$script" .sh)
    out="$RUNDIR/$name.out"
    t0=$(date +%s)
    # timeout puts the test in its own process group and signals the whole
    # group on expiry; afterwards we sweep that group for anything left over.
    timeout -k 15 "$TEST_TIMEOUT" bash "$script" >"$out" 2>&1 </dev/null &
    pid=$!
    wait "$pid"
    rc=$?
    kill -KILL -- "-$pid" 2>/dev/null || true
    t1=$(date +%s)
    case $rc in
    0)
        passed=$((passed + 1))
        echo "PASS $name ($((t1 - t0))s)"
        [ "${VERBOSE:-0}" = 1 ] && show_output "$out"
        ;;
    77)
        skipped=$((skipped + 1))
        reason=$(sed -n 's/^SKIP: //p' "$out" | tail -n 1)
        [ -n "$reason" ] || reason=$(tail -n 1 "$out")
        echo "SKIP $name: $reason"
        ;;
    *)
        failed=$((failed + 1))
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "FAIL $name (timed out after ${TEST_TIMEOUT}s)"
        else
            echo "FAIL $name (exit status $rc, $((t1 - t0))s)"
        fi
        show_output "$out"
        ;;
    esac
}

for script in tests/integration/t[0-9]*.sh; do
    selected "$(basename "$script" .sh)" || continue
    run_integration "$script"
done

# ------------------------------------------------------------- fuzz smoke
# tests/fuzz/smoke.sh builds the libFuzzer targets (clang) and runs each for a
# bounded number of inputs; its PASS/FAIL/SKIP lines are counted here.
if selected fuzz; then
    out="$RUNDIR/fuzz.out"
    fuzz_rc=0
    BUILD=$BUILD tests/fuzz/smoke.sh >"$out" 2>&1 || fuzz_rc=$?
    while IFS= read -r line; do
        case $line in
            "PASS "*) passed=$((passed + 1)); echo "$line" ;;
            "FAIL "*) failed=$((failed + 1)); echo "$line" ;;
            "SKIP "*) skipped=$((skipped + 1)); echo "$line" ;;
            *) [ "${VERBOSE:-0}" = 1 ] && echo "    | $line" ;;
        esac
    done <"$out"
    if grep -q '^FAIL ' "$out"; then
        show_output "$out" 80
    elif [ "$fuzz_rc" -ne 0 ]; then
        # smoke.sh died before it could report a target
        failed=$((failed + 1)); echo "FAIL fuzz smoke (exit status $fuzz_rc)"; show_output "$out" 40
    fi
fi

echo "(tests took $(( $(date +%s) - t_start ))s)"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
