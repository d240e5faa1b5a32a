#!/bin/bash
# t14-two-viewers: two TigerVNC viewers on one VM, both asking for an EXCLUSIVE
# session (-Shared=0, which under QEMU's default share policy disconnects every
# other client).  vmgate forces the shared flag, so both stay connected: QEMU
# lists two clients, neither viewer is closed, and both get the frames of a
# screen change made after the second one joined (SeaBIOS boot menu opened with
# an ESC key sent over QMP).
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'two viewers'
make_passwd bob 'bob two'
# "Press ESC for boot menu." stays up for 60 s; ESC then opens the menu, which waits forever
start_qemu a unix -boot menu=on,splash-time=60000
PORT=$(free_port)
write_config "$T/vmgate.conf" -- vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users="alice bob"
start_vmgate "$T/vmgate.conf"

vncviewer_start v1 alice 'two viewers' "$PORT" -Shared=0
expect_viewer_connected v1
expect_viewer_shows v1 a
screendump a "$T/before.png"

vncviewer_start v2 bob 'bob two' "$PORT" -Shared=0
expect_viewer_connected v2
expect_viewer_shows v2 a
sleep 2
viewer_alive v1 || fail "viewer 1 was closed when viewer 2 joined"
viewer_log_has v1 "$VV_FAIL" && fail "viewer 1 logged a disconnect: $(grep -E "$VV_FAIL" "${VV_LOG[v1]}" | tail -n 1)"
[ "$(qemu_vnc_clients a)" -eq 2 ] || fail "QEMU lists $(qemu_vnc_clients a) VNC clients, expected 2"
[ "$(grep -c 'session started' "$VMGATE_LOG")" -eq 2 ] || fail "expected two 'session started' lines"
grep -q 'session ended' "$VMGATE_LOG" && fail "a session ended while both should be live"

# change the screen now, after both joined
qmp_cmd a send-key esc >/dev/null || fail "send-key failed"
sleep 2
screendump a "$T/after.png"
"$PY" "$TOOLS/imgcmp.py" compare "$T/after.png" "$T/before.png" >/dev/null &&
    fail "the VM's screen did not change after ESC (boot menu did not open?)"
expect_viewer_shows v1 a
expect_viewer_shows v2 a
viewer_alive v1 && viewer_alive v2 || fail "a viewer exited"
say "both viewers followed the screen change"
