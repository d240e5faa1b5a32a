#!/bin/bash
# t87-web-browser: a real browser on the browser console.  Headless Debian
# Chromium (fresh profile; the test CA trusted through an NSS db in a temp
# HOME, no --ignore-certificate-errors) opens noVNC's own page from
# /usr/share/novnc served by vmgate, vnc.html?...&path=vnc/VM&encrypt=1&autoconnect=1,
# answers its credentials dialog and must reach the connected state with a
# canvas of the VM's size showing what QEMU's screendump shows; a wrong
# password ends in noVNC's error status with vmgate's reason.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/browser.sh"
need_vmgate
need_browser

make_certs
make_passwd alice 'browser pw'
start_qemu d unix
WP=$(free_port)
write_config "$T/vmgate.conf" web_port="$WP" -- vm d vnc="${QEMU_BACKEND[d]}" users=alice
start_vmgate "$T/vmgate.conf" 0
expect_log "listening for the browser console \(web\) on 127.0.0.1:$WP"

start_browser

wait_guest_stable d
URL="https://127.0.0.1:$WP/vnc.html?host=127.0.0.1&port=$WP&path=vnc/d&encrypt=1&autoconnect=1"
out=$("$PY" "$TOOLS/cdp.py" "$DP" novnc "$URL" alice 'browser pw' "$T/canvas.png") || fail "cdp: $out"
say "noVNC: $out"
[ "$out" = "connected 720 400" ] || fail "noVNC did not connect with the VM's size: $out"
expect_log "vm=d via=web user=alice from=127.0.0.1: session started"
"$PY" "$TOOLS/imgcmp.py" notblank "$T/canvas.png" || fail "the canvas is blank"
screendump d "$T/dump.png"
"$PY" "$TOOLS/imgcmp.py" compare "$T/canvas.png" "$T/dump.png" ||
    fail "noVNC's canvas does not show what QEMU's screendump shows"
say "canvas matches the screendump"

out=$("$PY" "$TOOLS/cdp.py" "$DP" novnc "$URL&x=2" alice 'wrong pw' "$T/c2.png") || fail "cdp: $out"
say "noVNC, wrong password: $out"
[[ $out == failed*"Authentication failed"* ]] || fail "wrong password not refused as such: $out"
expect_log "vm=d via=web from=127.0.0.1: login failed for user \"alice\""
vmgate_alive || fail "vmgate died"
