#!/usr/bin/env bash
# bench/wake.sh — login-to-first-frame time through vmgate (issue 14.5):
# from the viewer's TCP connect to the first FramebufferUpdate header
# (tests/tools/wakerfb.py: VeNCrypt Plain inside TLS, ClientInit, one full
# update request), median of N logins, for
#   running        a running VM without idle_pause
#   running_idle   a running VM with idle_pause (the login answer goes
#                  through the auth helper's idle state machine)
#   paused         a VM vmgate paused (idle_pause = 1s): the login resumes it
#                  (query-status + cont) before it is answered
# Real QEMU (TCG, -m 64, console on a unix socket, one monitor for vmgate and
# one for the bench).  Before each "paused" login the bench waits until
# vmgate has paused the VM again (query-status on its own monitor).
#
# Environment: WAKE_N [11] logins per row, BUILD [build].
# Output: a table on stdout, and bench/results/wake.csv (row,n,median_ms,min_ms,max_ms,
# answer_median_ms: connect to SecurityResult, which includes the wake).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
N=${WAKE_N:-11}
PY=/usr/bin/python3
TOOLS=$ROOT/tests/tools
T=$(mktemp -d /tmp/vmg-wakebench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
status() { $PY "$TOOLS/qmp.py" "$T/$1.ctl" query-status | $PY -c 'import json,sys; print(json.load(sys.stdin)["return"]["status"])'; }

[ -x "$BUILD/vmgate" ] || { echo "build vmgate first (make)"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "needs qemu-system-x86_64"; exit 1; }
for v in run runidle idle; do
    qemu-system-x86_64 -display none -nic none -m 64 -machine accel=tcg -name "$v" \
        -vnc "unix:$T/$v.vnc" -qmp "unix:$T/$v.qmp,server=on,wait=off" \
        -qmp "unix:$T/$v.ctl,server=on,wait=off" >"$T/qemu.$v.log" 2>&1 </dev/null & PIDS+=($!)
done
for v in run runidle idle; do
    for _ in $(seq 100); do [ -S "$T/$v.ctl" ] && [ -S "$T/$v.vnc" ] && break; sleep 0.1; done
done
"$BUILD/vmgate" certs init --dir "$T/tls" --name localhost,127.0.0.1 >/dev/null
printf 'bench pw\n' | "$BUILD/vmgate" passwd "$T/passwd" bench >/dev/null
P1=$(port); P2=$(port); P3=$(port)
cat >"$T/vmgate.conf" <<CONF
[gateway]
address = 127.0.0.1
cert = $T/tls/server.crt
key = $T/tls/server.key
auth = file
passwd_file = $T/passwd
user =
fail_delay = 0
socket_dir =
control =
[vm run]
vnc = unix:$T/run.vnc
qmp = $T/run.qmp
vnc_port = $P1
users = bench
[vm runidle]
vnc = unix:$T/runidle.vnc
qmp = $T/runidle.qmp
vnc_port = $P2
users = bench
idle_pause = 1h
[vm idle]
vnc = unix:$T/idle.vnc
qmp = $T/idle.qmp
vnc_port = $P3
users = bench
idle_pause = 1s
CONF
"$BUILD/vmgate" run -c "$T/vmgate.conf" 2>"$T/vmgate.log" & PIDS+=($!)
sleep 1.5
# login PORT: "FRAME_MS ANSWER_MS" (connect to first frame, connect to SecurityResult)
login() {
    $PY "$TOOLS/wakerfb.py" 127.0.0.1 "$1" "$T/tls/ca.crt" bench 'bench pw' >"$T/one.out"
    echo "$(sed -n 's/^login_to_frame_ms=//p' "$T/one.out") $(sed -n 's/^login_answer_ms=//p' "$T/one.out")"
}
mkdir -p bench/results
echo "row,n,median_ms,min_ms,max_ms,answer_median_ms" >bench/results/wake.csv
printf '%-14s %4s %10s %8s %8s %18s\n' row n median_ms min_ms max_ms login_answer_ms
# interleaved (one login per row per round), so the machine's load drifts
# into every row alike
for row in running running_idle paused; do : >"$T/$row.ms"; done
for _ in $(seq "$N"); do
    for row in running running_idle paused; do
        case $row in
        running) p=$P1 ;;
        running_idle) p=$P2 ;;
        paused)
            p=$P3
            for _ in $(seq 100); do [ "$(status idle)" = paused ] && break; sleep 0.1; done
            [ "$(status idle)" = paused ] || { echo "vmgate did not pause the VM"; exit 1; }
            ;;
        esac
        login "$p" >>"$T/$row.ms"
        sleep 0.2
    done
done
for row in running running_idle paused; do
    read -r med mn mx amed < <($PY - "$T/$row.ms" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
v = [float(r[0]) for r in rows]
a = [float(r[1]) for r in rows]
print("%.1f %.1f %.1f %.1f" % (statistics.median(v), min(v), max(v), statistics.median(a)))
PYEOF
)
    printf '%-14s %4s %10s %8s %8s %18s\n' "$row" "$N" "$med" "$mn" "$mx" "$amed"
    echo "$row,$N,$med,$mn,$mx,$amed" >>bench/results/wake.csv
done
echo "# resumes logged by vmgate: $(grep -c 'idle: vm idle resumed' "$T/vmgate.log")"
