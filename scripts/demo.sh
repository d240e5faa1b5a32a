#!/bin/bash
# scripts/demo.sh — run by `make demo` after the build.
#
# Sets up ./demo/ (or $DEMO_DIR): TLS certificates (vmgate certs init), a
# password file with user "demo" and a fresh random password, a config with
# one VM "demo" reached over QMP (QEMU runs with -vnc none).  Starts QEMU
# (no disk: it shows the SeaBIOS screen) and vmgate on 127.0.0.1, prints the
# viewer command and the password, then follows vmgate's log.  Ctrl-C stops
# QEMU and vmgate.
#
# vmgate runs as whoever ran the demo (the config's `user =` is empty), so it
# can reach the QMP socket QEMU created; as root it stays root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
VMGATE=${VMGATE:-$ROOT/$BUILD/vmgate}
DEMO=${DEMO_DIR:-$ROOT/demo}
DEMO=$(mkdir -p "$DEMO" && cd "$DEMO" && pwd)
chmod 700 "$DEMO"

[ -x "$VMGATE" ] || { echo "demo: $VMGATE is not built (run: make demo)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "demo: qemu-system-x86_64 missing (run: scripts/deps.sh)" >&2; exit 1; }

QEMU_PID= VMGATE_PID= TAIL_PID=
cleanup() {
    local p
    trap - EXIT INT TERM
    echo
    echo "demo: stopping vmgate and QEMU"
    for p in $TAIL_PID $VMGATE_PID $QEMU_PID; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in $TAIL_PID $VMGATE_PID $QEMU_PID; do
        for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -f "$DEMO/demo.qmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

port_in_use() { ss -Hltn "( sport = :$1 )" 2>/dev/null | grep -q .; }

# 1. certificates (kept across runs, so a viewer that trusts the CA keeps working).
# The CA key lives in tls/ca/ (0700), not beside server.key; a demo directory
# from before that layout has its CA key moved there (vmgate warns otherwise).
if [ -e "$DEMO/tls/ca.key" ]; then
    mkdir -p -m 700 "$DEMO/tls/ca" && mv "$DEMO/tls/ca.key" "$DEMO/tls/ca/ca.key"
fi
if [ ! -s "$DEMO/tls/ca.crt" ] || [ ! -s "$DEMO/tls/server.crt" ]; then
    "$VMGATE" certs init --dir "$DEMO/tls" --name localhost,127.0.0.1,::1 --force >/dev/null
fi

# 2. user "demo" with a new random password (16 characters from /dev/urandom)
PASS=$(head -c 12 /dev/urandom | base64 | tr '+/' 'xy')
rm -f "$DEMO/passwd"
printf '%s\n' "$PASS" | "$VMGATE" passwd "$DEMO/passwd" demo >/dev/null

# 3. a free console port, 5999 if possible
PORT=${DEMO_PORT:-}
if [ -z "$PORT" ]; then
    for p in 5999 $(seq 5998 -1 5900) $(seq 6000 6099); do
        port_in_use "$p" || { PORT=$p; break; }
    done
fi
[ -n "$PORT" ] || { echo "demo: no free port in 5900-6099" >&2; exit 1; }

cat >"$DEMO/vmgate.conf" <<EOF
; vmgate demo config, written by scripts/demo.sh
[gateway]
address = 127.0.0.1
cert = $DEMO/tls/server.crt
key = $DEMO/tls/server.key
auth = file
passwd_file = $DEMO/passwd
; empty: run as whoever started vmgate (so it can reach QEMU's QMP socket)
user =
login_timeout = 30s
; local users: vncviewer -SecurityTypes None $DEMO/run/demo.vnc (by uid, no password)
socket_dir = $DEMO/run

[vm demo]
vnc = qmp:$DEMO/demo.qmp
vnc_port = $PORT
users = demo
EOF

# 4. QEMU: no disk, no network, no VNC listener of its own; only QMP
rm -f "$DEMO/demo.qmp"
qemu-system-x86_64 -name demo -display none -nic none -m 64 -machine accel=kvm:tcg \
    -vnc none -qmp "unix:$DEMO/demo.qmp,server=on,wait=off" \
    >"$DEMO/qemu.log" 2>&1 </dev/null &
QEMU_PID=$!
for _ in $(seq 100); do
    [ -S "$DEMO/demo.qmp" ] && break
    kill -0 "$QEMU_PID" 2>/dev/null || { cat "$DEMO/qemu.log" >&2; echo "demo: QEMU exited" >&2; exit 1; }
    sleep 0.1
done
[ -S "$DEMO/demo.qmp" ] || { echo "demo: QEMU did not create its QMP socket" >&2; exit 1; }

# 5. vmgate
"$VMGATE" run -c "$DEMO/vmgate.conf" >"$DEMO/vmgate.log" 2>&1 </dev/null &
VMGATE_PID=$!
for _ in $(seq 100); do
    grep -q 'listening for vm demo' "$DEMO/vmgate.log" && break
    kill -0 "$VMGATE_PID" 2>/dev/null || { cat "$DEMO/vmgate.log" >&2; echo "demo: vmgate exited" >&2; exit 1; }
    sleep 0.1
done
grep -q 'listening for vm demo' "$DEMO/vmgate.log" ||
    { cat "$DEMO/vmgate.log" >&2; echo "demo: vmgate did not start listening" >&2; exit 1; }

cat <<EOF

  vmgate demo is running: VM "demo" (QEMU without a disk: it shows the SeaBIOS screen)
  behind vmgate on 127.0.0.1:$PORT (VeNCrypt X509Plain, TLS).

  Connect with TigerVNC:

    VNC_USERNAME=demo vncviewer -SecurityTypes X509Plain -X509CA $DEMO/tls/ca.crt localhost::$PORT

  User:      demo
  Password:  $PASS
  (vncviewer asks for both in its login dialog; or also set VNC_PASSWORD='$PASS')

  Files in $DEMO: vmgate.conf, tls/, passwd, vmgate.log, qemu.log.
  vmgate runs as $(id -un) (the config's "user =" is empty).
  Press Ctrl-C to stop QEMU and vmgate.  vmgate's log follows:

EOF

tail -n +1 --pid="$VMGATE_PID" -f "$DEMO/vmgate.log" &
TAIL_PID=$!
wait "$TAIL_PID" || true
TAIL_PID=
echo "demo: vmgate exited"
exit 1
