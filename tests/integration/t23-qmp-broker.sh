#!/bin/bash
# t23-qmp-broker: the network process never talks QMP.  QEMU's monitor is a
# root-only socket (0600); vmgate started as root with user = nobody hands
# the viewer's console off through the QMP broker in the auth helper (a
# fixed getfd + add_client it composes itself), so the session works while
# the network process, as nobody, cannot even connect to the monitor.  Before
# the broker the network process opened the monitor itself: this test fails
# there ("vm d is not running (connect ...: Permission denied)").
. "$(dirname "$0")/lib.sh"
need_root "the broker boundary only exists when vmgate drops privileges"
need_vmgate
id nobody >/dev/null 2>&1 || skip "no user 'nobody' on this machine"

make_certs
make_passwd alice 'broker pw'
chmod 755 "$T"                      # only the socket's own mode guards the monitor
start_qemu d qmp
chmod 600 "$T/d.qmp"
runuser -u nobody -- "$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' \
    "$T/d.qmp" 2>/dev/null && fail "nobody can connect to the 0600 monitor socket"
P=$(free_port)
write_config "$T/vmgate.conf" user=nobody -- vm d vnc="${QEMU_BACKEND[d]}" vnc_port="$P" users=alice
start_vmgate "$T/vmgate.conf"
expect_log "network-facing process runs as nobody"

vncviewer_start v alice 'broker pw' "$P"
expect_viewer_connected v
expect_viewer_shows v d
expect_log "qmp vnc-handoff vm=d conn=[0-9]+: ok"
expect_log "vm=d user=alice from=[^ ]+: session started \(backend qmp:"
stop_viewer v
# a second session: the broker serves every handoff, the monitor is free again
vncviewer_start w alice 'broker pw' "$P"
expect_viewer_connected w
stop_viewer w
[ "$(grep -cE 'qmp vnc-handoff vm=d conn=[0-9]+: ok' "$VMGATE_LOG")" -eq 2 ] ||
    fail "expected two handoffs through the broker"
stop_vmgate
