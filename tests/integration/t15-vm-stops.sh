#!/bin/bash
# t15-vm-stops: two VMs behind one vmgate.  QEMU "a" is killed mid-session: that
# viewer is closed cleanly and promptly (End of stream within 3 s), vmgate logs the end of the session
# and keeps running; a new viewer of VM "b" still gets in; a viewer of the dead
# VM is told "VM a is not running" (and the log says so); once QEMU "a" is back,
# its viewers get in again.
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'stop pw'
start_qemu a unix
start_qemu b qmp
PA=$(free_port); PB=$(free_port)
write_config "$T/vmgate.conf" -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PA" users=alice \
    vm b vnc="${QEMU_BACKEND[b]}" vnc_port="$PB" users=alice
start_vmgate "$T/vmgate.conf" 2

vncviewer_start a1 alice 'stop pw' "$PA"
expect_viewer_connected a1
expect_viewer_shows a1 a
vncviewer_start b1 alice 'stop pw' "$PB"
expect_viewer_connected b1

say "killing QEMU a (pid ${QEMU_PID[a]})"
t0=$(now_ms)
kill -KILL "${QEMU_PID[a]}"
wait "${QEMU_PID[a]}" 2>/dev/null || true
# nothing is left to flush to the viewer, so the close should be prompt
wait_for 3 _not_alive "${VV_PID[a1]}" ||
    fail "viewer of VM a still connected 3 s after QEMU a died (vmgate log: $(grep 'vm=a' "$VMGATE_LOG" | tail -n 1))"
viewer_log_has a1 'End of stream|closed' ||
    fail "viewer of VM a did not see a clean close: $(tail -n 2 "${VV_LOG[a1]}")"
say "viewer a1 closed after $(($(now_ms) - t0)) ms: $(grep -E 'End of stream|closed' "${VV_LOG[a1]}" | tail -n 1)"
expect_log "conn=[0-9]+ vm=a user=alice from=[^ ]+: session ended"
vmgate_alive || fail "vmgate died with QEMU a"

# the other VM's live session is untouched, and new viewers of it get in
viewer_alive b1 || fail "viewer of VM b was closed when QEMU a died"
vncviewer_start b2 alice 'stop pw' "$PB"
expect_viewer_connected b2
expect_viewer_shows b2 b

# the dead VM: a clear reason, not a silent close
vncviewer_start a2 alice 'stop pw' "$PA"
expect_viewer_refused a2 "VM a is not running"
expect_log "conn=[0-9]+ .*vm a is not running"

# QEMU a comes back (same socket path): its viewers get in again
rm -f "$T/a.vnc" "$T/a.ctl"
start_qemu a unix
vncviewer_start a3 alice 'stop pw' "$PA"
expect_viewer_connected a3
expect_viewer_shows a3 a
