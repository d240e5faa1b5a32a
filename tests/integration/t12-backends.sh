#!/bin/bash
# t12-backends: one vmgate, three VMs, one per backend kind: unix:PATH,
# HOST:PORT and qmp:PATH (QEMU with -vnc none; vmgate hands it a socketpair via
# getfd + add_client).  For each, a TigerVNC viewer gets the VM's own screen,
# and the log names the backend; during the session only that VM's QEMU lists
# a VNC client.
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'backend pw'
start_qemu u unix
start_qemu t tcp
start_qemu q qmp
PU=$(free_port); PT=$(free_port); PQ=$(free_port)
write_config "$T/vmgate.conf" -- \
    vm u vnc="${QEMU_BACKEND[u]}" vnc_port="$PU" users=alice \
    vm t vnc="${QEMU_BACKEND[t]}" vnc_port="$PT" users=alice \
    vm q vnc="${QEMU_BACKEND[q]}" vnc_port="$PQ" users=alice
start_vmgate "$T/vmgate.conf" 3
for vm in u t q; do expect_log "listening for vm $vm \(vnc\) on "; done

clients_are() { [ "$(qemu_vnc_clients "$1")" -eq "$2" ]; }

check_vm() {   # VM PORT BACKEND-REGEX
    local vm=$1 port=$2 be=$3
    vncviewer_start "$vm" alice 'backend pw' "$port"
    expect_viewer_connected "$vm"
    expect_viewer_shows "$vm" "$vm"
    expect_log "vm=$vm user=alice from=[^ ]+: session started \(backend $be\)"
    # the session went to this VM and no other
    local other
    for other in u t q; do
        if [ "$other" = "$vm" ]; then
            [ "$(qemu_vnc_clients "$other")" -eq 1 ] || fail "QEMU $vm does not list exactly one VNC client"
        else
            wait_for 5 clients_are "$other" 0 || fail "QEMU $other has a VNC client during $vm's session"
        fi
    done
    stop_viewer "$vm"
    expect_log "vm=$vm user=alice from=[^ ]+: session ended"
}
check_vm u "$PU" "unix:$T/u.vnc"
check_vm t "$PT" "${QEMU_BACKEND[t]}"
check_vm q "$PQ" "qmp:$T/q.qmp"

[ "$(grep -c 'session started' "$VMGATE_LOG")" -eq 3 ] || fail "expected exactly 3 sessions in the log"
