#!/bin/bash
# t40-demo: scripts/demo.sh (what `make demo` runs), in a temp DEMO_DIR:
# it prints the vncviewer command and a 16-character password; TigerVNC with
# exactly that CA, user and password gets a non-blank screen; on SIGTERM (what
# Ctrl-C does) the demo stops vmgate and QEMU.
. "$(dirname "$0")/lib.sh"
need_vmgate

D=$T/demo
PORT=$(free_vnc_port)
add_log "$T/demo.out"
DEMO_DIR=$D DEMO_PORT=$PORT "$ROOT/scripts/demo.sh" >"$T/demo.out" 2>&1 </dev/null &
DEMO_PID=$!
track "$DEMO_PID"
wait_for 30 grep -q 'Password:' "$T/demo.out" || fail "demo did not print a password"
wait_for 10 grep -q 'listening for vm demo' "$T/demo.out" || fail "demo did not show vmgate's log"

cmdline=$(grep -E '^ *VNC_USERNAME=demo vncviewer ' "$T/demo.out" | head -n 1 | sed 's/^ *//')
[ "$cmdline" = "VNC_USERNAME=demo vncviewer -SecurityTypes X509Plain -X509CA $D/tls/ca.crt localhost::$PORT" ] ||
    fail "unexpected viewer command: '$cmdline'"
PASS=$(sed -n 's/^ *Password: *//p' "$T/demo.out" | head -n 1)
[[ $PASS =~ ^[A-Za-z0-9]{16}$ ]] || fail "password '$PASS' is not 16 letters/digits"
grep -q "^demo:" "$D/passwd" || fail "no demo user in $D/passwd"

CA=$D/tls/ca.crt
vncviewer_start v demo "$PASS" "$PORT"
expect_viewer_connected v
ok=0
# SeaBIOS's text is one colour on black: 2 colours and a non-black area are a
# screen (a blank window is 1 colour); on a loaded machine the third colour
# the old check wanted did not come (its source was not pinned down)
for _ in $(seq 20); do
    viewer_screenshot v "$T/shot.png"
    if "$PY" "$TOOLS/imgcmp.py" notblank "$T/shot.png" 2 >"$T/nb.txt"; then ok=1; break; fi
    sleep 1
done
[ "$ok" = 1 ] || fail "the demo VM's screen stayed blank in the viewer: $(cat "$T/nb.txt")"
say "viewer shows the demo VM: $(cat "$T/nb.txt")"
stop_viewer v

kill -TERM "$DEMO_PID"
wait_for 15 _not_alive "$DEMO_PID" || fail "demo still running 15 s after SIGTERM"
wait_for 5 eval '! port_listening 127.0.0.1 '"$PORT" || fail "port $PORT still open after the demo stopped"
# (patterns written so they do not match this grep's own command line)
left=$(grep -l -e "$D/vmgate\.con[f]" -e "$D/demo\.qm[p]" -e "$D/vmgate\.lo[g]" /proc/[0-9]*/cmdline 2>/dev/null | wc -l || true)
[ "$left" -eq 0 ] || fail "$left process(es) of the demo still running after it stopped"
say "demo stopped QEMU and vmgate"
