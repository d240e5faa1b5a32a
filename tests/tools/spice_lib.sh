# tests/tools/spice_lib.sh — helpers for the SPICE integration tests
# (tests/integration/t6*-spice*.sh).  Source it after lib.sh.
#
# The gateway under test is build/vmgate; start_spice_gateway fails when it
# does not open every spice_port.
# shellcheck shell=bash disable=SC2034

SPICE_CLIP=$TOOLS/spice_clip.py
SPICE_RAW=$TOOLS/spice_raw.py

spice_need_viewer() {
    command -v spicy-screenshot >/dev/null 2>&1 ||
        skip "spicy-screenshot not installed (Debian package spice-client-gtk)"
}

spice_need_gi() {
    /usr/bin/python3 -c 'import gi; gi.require_version("SpiceClientGLib", "2.0"); from gi.repository import SpiceClientGLib' \
        >/dev/null 2>&1 ||
        skip "spice-gtk GObject introspection missing (python3-gi, gir1.2-spiceclientglib-2.0)"
}

# start_spice_gateway CONFIG: run the gateway; wait for one "(spice)" listening
# line per spice_port in CONFIG.  Sets VMGATE_PID / VMGATE_LOG like start_vmgate.
start_spice_gateway() {
    local cfg=$1 n i
    n=$(grep -c '^spice_port *=' "$cfg" || true)
    i=$(( ${#LOGS[@]} ))
    VMGATE_LOG=$T/vmgate.$i.log
    VMGATE_CFG=$cfg
    add_log "$VMGATE_LOG"
    need_vmgate
    "$VMGATE" run -c "$cfg" >"$VMGATE_LOG" 2>&1 </dev/null &
    VMGATE_PID=$!
    track "$VMGATE_PID"
    for _ in $(seq 150); do
        if ! kill -0 "$VMGATE_PID" 2>/dev/null; then
            wait "$VMGATE_PID" && i=0 || i=$?
            echo "--- config $cfg ---"; cat "$cfg"
            fail "the gateway exited (status $i) during start-up"
        fi
        [ "$(grep -c 'listening for vm .* (spice) on ' "$VMGATE_LOG")" -ge "$n" ] && return 0
        sleep 0.1
    done
    fail "the gateway did not print $n 'listening for vm ... (spice)' lines within 15 s"
}

# start_qemu_spice NAME [QEMU ARGS...]: QEMU with -vga qxl and SPICE on the unix
# socket $T/NAME.spice, no ticket set (nobody can open it until vmgate sets
# one), a QMP socket $T/NAME.qmp for vmgate and $T/NAME.ctl for the test.
start_qemu_spice() {
    local name=$1
    shift
    add_log "$T/qemu.$name.log"
    qemu-system-x86_64 -display none -nodefaults -vga qxl -m 64 -machine accel=tcg -name "$name" \
        -qmp "unix:$T/$name.qmp,server=on,wait=off" -qmp "unix:$T/$name.ctl,server=on,wait=off" \
        -spice "unix=on,addr=$T/$name.spice" "$@" >"$T/qemu.$name.log" 2>&1 </dev/null &
    QEMU_PID[$name]=$!
    QEMU_CTL[$name]=$T/$name.ctl
    track "${QEMU_PID[$name]}"
    wait_for 20 test -S "$T/$name.spice" || fail "QEMU $name did not create its SPICE socket"
    wait_for 10 test -S "$T/$name.ctl" || fail "QEMU $name: no QMP socket"
    say "QEMU $name up (pid ${QEMU_PID[$name]}, spice unix:$T/$name.spice)"
}

# spice_shot USER PASS PORT OUT.png: spicy-screenshot through the gateway
# (CA via SSL_CERT_FILE, user name in the URI, password for SASL); prints its
# output, returns its status; converts the PPM to OUT.png on success.
spice_shot() {
    local user=$1 pass=$2 port=$3 out=$4 rc=0
    rm -f "$out.ppm"
    SSL_CERT_FILE=$CA timeout -k 5 30 spicy-screenshot \
        --uri "spice://$user@localhost?tls-port=$port" -w "$pass" -o "$out.ppm" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ] && [ -s "$out.ppm" ]; then
        "$PY" -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2])' \
            "$out.ppm" "$out"
    fi
    return "$rc"
}

# spice_raw ARGS...: tests/tools/spice_raw.py against 127.0.0.1 with $CA
spice_raw() {
    local port=$1
    shift
    "$PY" "$SPICE_RAW" 127.0.0.1 "$port" "$CA" "$@"
}

# spice_clip URI-USER PASS PORT MODE [ARGS]: tests/tools/spice_clip.py
spice_clip() {
    local user=$1 pass=$2 port=$3
    shift 3
    SSL_CERT_FILE=$CA timeout -k 5 60 /usr/bin/python3 "$SPICE_CLIP" \
        "spice://$user@localhost?tls-port=$port" "$pass" "$@"
}

count_log() { grep -Ec -- "$1" "$VMGATE_LOG" || true; }
