#!/bin/bash
# t89-cu-far-link: TigerVNC through a 100 ms round-trip link (bench/delay_relay.py,
# user space: no netem here) and vmgate: continuous updates are enabled, the
# viewer answers vmgate's fences across the link, and its screen follows
# QEMU's through a guest reset (every update after the first is one vmgate
# asked for on the viewer's behalf).
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'alice pw 1'
start_qemu a unix
PA=$(free_port)
PL=$(free_port)
write_config "$T/vmgate.conf" -- vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PA" users=alice
start_vmgate "$T/vmgate.conf"
add_log "$T/relay.log"
"$PY" "$ROOT/bench/delay_relay.py" "$PL" 127.0.0.1 "$PA" 50 --queue 1048576 >"$T/relay.log" 2>&1 &
track $!
wait_for 10 port_listening 127.0.0.1 "$PL" || fail "delay relay did not start"
wait_guest_stable a

t0=$(now_ms)
vncviewer_start v1 alice 'alice pw 1' "$PL" -Log '*:stderr:30,CConnection:stderr:100'
expect_viewer_connected v1
say "connected through the delayed link in $(($(now_ms) - t0)) ms"
expect_viewer_shows v1 a
wait_for 10 viewer_log_has v1 'Enabling continuous updates' ||
    fail "the viewer did not enable continuous updates"
expect_log "vm=a user=alice from=[^ ]+: continuous updates: on, by vmgate; flow control by fence round trips"
qmp_cmd a system_reset >/dev/null || fail "system_reset failed"
sleep 2
wait_guest_stable a
expect_viewer_shows v1 a
viewer_alive v1 || fail "viewer exited"
log_has "session ended|cannot follow" && fail "session ended: $(grep -E 'session ended|cannot follow' "$VMGATE_LOG")"
true
