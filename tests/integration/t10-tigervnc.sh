#!/bin/bash
# t10-tigervnc: TigerVNC vncviewer, through vmgate (unix: backend, dual-stack
# listener), reaches the SeaBIOS screen: what the viewer shows matches QEMU's own
# screendump.  Also: vmgate answers on 127.0.0.1 and ::1, offers only [19]/[262],
# logs "session started"/"session ended", and SIGTERM with a live session exits 0
# and closes the viewer.
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'alice pw 1'
start_qemu a unix
PORT=$(free_port)
write_config "$T/vmgate.conf" address=:: -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users=alice
start_vmgate "$T/vmgate.conf"
expect_log "listening for vm a \(vnc\) on .*:$PORT"

# both address families answer with RFB 3.8, and only VeNCrypt/X509Plain is offered
for host in 127.0.0.1 ::1; do
    "$PY" "$TOOLS/rawrfb.py" version "$host" "$PORT" >"$T/ver.$host" 2>&1 || true
    grep -q "version='RFB 003.008\\\\n'" "$T/ver.$host" || { cat "$T/ver.$host"; fail "no RFB 3.8 greeting on $host"; }
done
"$PY" "$TOOLS/rawrfb.py" --timeout 3 subtype 127.0.0.1 "$PORT" 999 >"$T/offer.txt" 2>&1 || true
grep -qx 'sectypes=19' "$T/offer.txt" || { cat "$T/offer.txt"; fail "security types offered are not exactly [19]"; }
grep -qx 'subtypes=262' "$T/offer.txt" || { cat "$T/offer.txt"; fail "VeNCrypt subtypes offered are not exactly [262]"; }
say "offers [19] -> [262] on 127.0.0.1 and ::1"

# the real viewer
vncviewer_start v1 alice 'alice pw 1' "$PORT"
expect_viewer_connected v1
viewer_log_has v1 'Choosing security type X509Plain' || fail "viewer did not use X509Plain"
expect_viewer_shows v1 a
expect_log "conn=[0-9]+ vm=a user=alice from=[^ ]+: session started \(backend unix:$T/a.vnc\)"
[ "$(qemu_vnc_clients a)" -eq 1 ] || fail "QEMU does not see exactly one VNC client"

# a raw login sees QEMU's ServerInit through vmgate and gets pixels
"$PY" "$TOOLS/rawrfb.py" login 127.0.0.1 "$PORT" "$CA" alice 'alice pw 1' >"$T/login.txt" 2>&1 ||
    { cat "$T/login.txt"; fail "raw login failed"; }
grep -qx 'result=ok' "$T/login.txt" && grep -qx 'size=720x400' "$T/login.txt" ||
    { cat "$T/login.txt"; fail "raw login: no ServerInit 720x400"; }
b=$(sed -n 's/^update_bytes=//p' "$T/login.txt")
[ "${b:-0}" -gt 100 ] || { cat "$T/login.txt"; fail "raw login: no framebuffer update"; }

# closing the viewer ends its session in the log
n_end=$(grep -c 'session ended' "$VMGATE_LOG" || true)
stop_viewer v1
wait_for 10 eval '[ "$(grep -c "session ended" "$VMGATE_LOG")" -gt "$n_end" ]' ||
    fail "no 'session ended' line after the viewer quit"
expect_log "conn=[0-9]+ vm=a user=alice from=[^ ]+: session ended"
grep -q 'alice pw 1' "$VMGATE_LOG" && fail "the password appears in vmgate's log"

# SIGTERM with a live session: vmgate exits 0, the viewer is closed
vncviewer_start v2 alice 'alice pw 1' "$PORT"
expect_viewer_connected v2
stop_vmgate
wait_for 10 _not_alive "${VV_PID[v2]}" || fail "viewer still running after vmgate exited"
say "SIGTERM: vmgate exited 0, viewer closed: $(grep -E "$VV_FAIL" "${VV_LOG[v2]}" | tail -n 1)"
