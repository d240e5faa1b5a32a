#!/usr/bin/env bash
# bench/all.sh — `make bench`: the loopback bench (bench/run.sh: vmgate against
# the direct path, stunnel, haproxy, websockify, and its web path against
# websockify) and the far-link bench (bench/cu.sh: updates, throughput and
# age through a 20 Mbit/s link with RTT 100 and 200 ms, small changes and
# large redraws, vmgate against haproxy as a TLS relay and QEMU direct),
# then one table of ratios (bench/ratios.py -> BENCH_OUT/ratios.md).
#
# BENCH_QUICK=1: one round of everything with short windows and fewer idle
# sessions (about 5 minutes on 2 shared cores; the full run takes well over
# half an hour).  Every BENCH_* / CU_* variable of the two parts still applies
# (see their headers); BENCH_PARTS ["loopback farlink"] picks parts.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${BENCH_OUT:-$ROOT/bench/results}
export BENCH_OUT=$OUT CU_OUT=${CU_OUT:-$OUT}
PARTS=${BENCH_PARTS:-loopback farlink}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    export BENCH_RUNS=${BENCH_RUNS:-1} BENCH_SECONDS=${BENCH_SECONDS:-2}
    export BENCH_LOGIN_SECONDS=${BENCH_LOGIN_SECONDS:-2} BENCH_RTT_COUNT=${BENCH_RTT_COUNT:-3000}
    export BENCH_SCALE=${BENCH_SCALE-10} BENCH_IDLE=${BENCH_IDLE-1000} BENCH_IDLE_WS=${BENCH_IDLE_WS:-50}
    export BENCH_QUICK CU_PATHS=${CU_PATHS:-direct haproxy vmgate}
fi
rc=0
t0=$(date +%s)
if [[ " $PARTS " == *" loopback "* ]]; then
    bench/run.sh || rc=1
fi
t1=$(date +%s)
if [[ " $PARTS " == *" farlink "* ]]; then
    bench/cu.sh || rc=1
fi
t2=$(date +%s)
echo
echo "## make bench: ratios (loopback part $((t1 - t0)) s, far-link part $((t2 - t1)) s)"
echo
python3 bench/ratios.py "$OUT/summary.csv" "$OUT/cu.csv" "$OUT/ratios.md" || rc=1
exit $rc
