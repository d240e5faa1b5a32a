#!/bin/bash
# t88-cu-tigervnc: TigerVNC through vmgate gets continuous updates and fences
# from vmgate (QEMU 7.2 has neither): the viewer's own log shows it enabled
# continuous updates, vmgate logs the mode, the screen matches QEMU's
# screendump, and after a reset of the guest (the viewer sends no requests
# any more) it matches again.  (CConnection logs at level 100 only: with
# every log at 100 TigerVNC draws its statistics graph over the screen.)  With continuous_updates = off the same viewer
# still works, in its request/update loop.
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'alice pw 1'
start_qemu a unix
start_qemu b unix
PA=$(free_port)
PB=$(free_port)
write_config "$T/vmgate.conf" -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PA" users=alice \
    vm b vnc="${QEMU_BACKEND[b]}" vnc_port="$PB" users=alice continuous_updates=off
start_vmgate "$T/vmgate.conf"
wait_guest_stable a

vncviewer_start v1 alice 'alice pw 1' "$PA" -Log '*:stderr:30,CConnection:stderr:100'
expect_viewer_connected v1
expect_viewer_shows v1 a
expect_log "vm=a user=alice from=[^ ]+: continuous updates: on, by vmgate; flow control by fence round trips"
wait_for 10 viewer_log_has v1 'Enabling continuous updates' ||
    fail "the viewer did not enable continuous updates"
say "viewer: $(grep -m1 'Enabling continuous updates' "${VV_LOG[v1]}")"

# the guest's screen changes: the viewer (no requests of its own now) follows
qmp_cmd a system_reset >/dev/null || fail "system_reset failed"
sleep 2
wait_guest_stable a
expect_viewer_shows v1 a
log_has "conn=[0-9]+ vm=a .*(cannot follow|session ended)" &&
    fail "the session ended or lost sync: $(grep -E 'cannot follow|session ended' "$VMGATE_LOG")"
[ "$(qemu_vnc_clients a)" -eq 1 ] || fail "QEMU does not see exactly one VNC client"
stop_viewer v1

# continuous_updates = off: the viewer is not offered them and still works
vncviewer_start v2 alice 'alice pw 1' "$PB" -Log '*:stderr:30,CConnection:stderr:100'
expect_viewer_connected v2
expect_viewer_shows v2 b
expect_log "vm=b user=alice from=[^ ]+: continuous updates: off \(continuous_updates = off\)"
viewer_log_has v2 'Enabling continuous updates' && fail "viewer of vm b enabled continuous updates"
true
