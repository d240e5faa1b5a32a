#!/usr/bin/env bash
# bench/cu.sh — updates per second over a far link (RTT 100 ms by default):
# a TigerVNC-like client straight to the VNC server through a delayed link
# (the request/update loop: one update per round trip at best), against the
# same client through the same link and vmgate, which offers it continuous
# updates and fences (QEMU has neither).  The server is `vncbench serve`,
# which answers every request at once (a screen that is always dirty), with
# Raw updates of the requested W x H.  The link is bench/delay_relay.py
# (user space: the kernel here has no netem).
#
# Environment: CU_DELAY_MS [50] each way, CU_SECONDS [5], CU_SIZES ["64x64 256x256"],
# CU_QUEUE [4194304] bytes per direction in the delayed link, BUILD [build].
# Output: a table on stdout, and bench/results/cu.csv.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
DELAY=${CU_DELAY_MS:-50}
SECS=${CU_SECONDS:-5}
SIZES=${CU_SIZES:-64x64 256x256}
QUEUE=${CU_QUEUE:-4194304}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/vmg-cubench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

[ -x "$BUILD/vmgate" ] || { echo "build vmgate first (make)"; exit 1; }
gcc -O2 -std=gnu17 -pthread -o "$T/vncbench" bench/vncbench.c -lssl -lcrypto
PS=$(port); PV=$(port); PO=$(port); RD=$(port); RV=$(port); RO=$(port)
"$T/vncbench" serve --port "$PS" 2>"$T/serve.log" & PIDS+=($!)
"$BUILD/vmgate" certs init --dir "$T/tls" --name localhost,127.0.0.1 >/dev/null
printf 'bench pw\n' | "$BUILD/vmgate" passwd "$T/passwd" bench >/dev/null
cat >"$T/vmgate.conf" <<CONF
[gateway]
address = 127.0.0.1
cert = $T/tls/server.crt
key = $T/tls/server.key
auth = file
passwd_file = $T/passwd
user =
fail_delay = 0
[vm bench]
vnc = 127.0.0.1:$PS
vnc_port = $PV
users = bench
[vm bench_off]
vnc = 127.0.0.1:$PS
vnc_port = $PO
users = bench
continuous_updates = off
CONF
"$BUILD/vmgate" run -c "$T/vmgate.conf" 2>"$T/vmgate.log" & PIDS+=($!)
$PY bench/delay_relay.py "$RD" 127.0.0.1 "$PS" "$DELAY" --queue "$QUEUE" >/dev/null 2>&1 & PIDS+=($!)
$PY bench/delay_relay.py "$RV" 127.0.0.1 "$PV" "$DELAY" --queue "$QUEUE" >/dev/null 2>&1 & PIDS+=($!)
$PY bench/delay_relay.py "$RO" 127.0.0.1 "$PO" "$DELAY" --queue "$QUEUE" >/dev/null 2>&1 & PIDS+=($!)
sleep 1.5
mkdir -p bench/results
echo "path,size,rtt_ms,updates_per_s,mbytes_per_s" >bench/results/cu.csv
printf '%-22s %-9s %8s %12s %10s\n' path size rtt_ms updates/s MB/s
for sz in $SIZES; do
    w=${sz%x*} h=${sz#*x}
    for path in direct vmgate_off vmgate_nofence vmgate; do
        case $path in
        direct)
            out=$($PY bench/cu_client.py direct 127.0.0.1 "$RD" "$SECS" "$w" "$h")
            label="plain relay" ;;
        vmgate_off)
            out=$($PY bench/cu_client.py vmgate 127.0.0.1 "$RO" "$SECS" "$w" "$h" "$T/tls/ca.crt" bench 'bench pw' | grep updates_per_s)
            label="vmgate (cu off)" ;;
        vmgate_nofence)
            out=$($PY bench/cu_client.py vmgate 127.0.0.1 "$RV" "$SECS" "$w" "$h" "$T/tls/ca.crt" bench 'bench pw' nofence | grep updates_per_s)
            label="vmgate (cu, no fence)" ;;
        vmgate)
            out=$($PY bench/cu_client.py vmgate 127.0.0.1 "$RV" "$SECS" "$w" "$h" "$T/tls/ca.crt" bench 'bench pw' | grep updates_per_s)
            label="vmgate (continuous)" ;;
        esac
        u=$(sed -n 's/.*updates_per_s=\([0-9.]*\).*/\1/p' <<<"$out")
        m=$(sed -n 's/.*mbytes_per_s=\([0-9.]*\).*/\1/p' <<<"$out")
        printf '%-22s %-9s %8s %12s %10s\n' "$label" "$sz" $((2 * DELAY)) "$u" "$m"
        echo "$path,$sz,$((2 * DELAY)),$u,$m" >>bench/results/cu.csv
    done
done
grep -h "continuous updates" "$T/vmgate.log" | sort -u -t: -k4 | sed 's/^.*: continuous/# continuous/'
