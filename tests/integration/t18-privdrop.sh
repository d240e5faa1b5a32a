#!/bin/bash
# t18-privdrop: started as root with user = nobody, vmgate loads its 0600 key
# and binds as root, then the network-facing process runs as nobody while the
# auth helper keeps root (it needs it for PAM); a viewer still logs in, and
# the helper's worker processes are gone once the login is answered.
. "$(dirname "$0")/lib.sh"
need_root "the privilege drop only happens when vmgate starts as root"
need_vmgate
id nobody >/dev/null 2>&1 || skip "no user 'nobody' on this machine"

make_certs
[ "$(stat -c %a "$T/tls/server.key")" = 600 ] || fail "server.key is not mode 0600"
make_passwd alice 'drop pw'
chmod 600 "$T/passwd"
# nobody must be able to reach the backend: QEMU on loopback TCP.
start_qemu d tcp
P=$(free_port)
write_config "$T/vmgate.conf" user=nobody -- vm d vnc="${QEMU_BACKEND[d]}" vnc_port="$P" users=alice
start_vmgate "$T/vmgate.conf"
expect_log "network-facing process runs as nobody"

main_user=$(ps -o user= -p "$VMGATE_PID" | tr -d ' ')
[ "$main_user" = nobody ] || fail "network-facing process runs as '$main_user', not nobody"
helper=$(pgrep -P "$VMGATE_PID" | head -1)
[ -n "$helper" ] || fail "no auth helper child of $VMGATE_PID"
helper_user=$(ps -o user= -p "$helper" | tr -d ' ')
[ "$helper_user" = root ] || fail "auth helper runs as '$helper_user', not root"
# nobody cannot read the key or the password file: they were loaded before the drop
runuser -u nobody -- cat "$T/tls/server.key" >/dev/null 2>&1 && fail "nobody can read server.key"
grep -q '^CapEff:[[:space:]]*0*$' "/proc/$VMGATE_PID/status" || fail "network process kept capabilities"

vncviewer_start v alice 'drop pw' "$P"
expect_viewer_connected v
expect_viewer_shows v d
expect_log "vm=d user=alice from=[^ ]+: session started"
stop_viewer v
# only the helper itself remains: workers exit after answering
wait_for 5 bash -c "[ \$(pgrep -P $helper | wc -l) -eq 0 ]" || fail "auth workers left behind"
stop_vmgate
