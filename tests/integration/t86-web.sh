#!/bin/bash
# t86-web: the browser console on web_port, driven from Python (no browser):
# RFB over wss:// as noVNC 1.3 speaks it (VeNCrypt [19], Plain [256], no ack,
# credentials as separate messages) reaches a VM that has no vnc_port; a wrong
# password, an unknown VM, a VM the user may not open and a VM without a vnc
# backend all get the same SecurityResult failure after the credentials; a
# foreign Origin (or none) gets 403 before any RFB byte, one listed in
# web_origins gets in; ping -> pong, a text frame -> close 1003; static files
# come with the right MIME type and security headers; traversal attempts
# (.., encoded dots, symlinks out of novnc_dir, directories) get 404; POST 405.
. "$(dirname "$0")/lib.sh"
need_vmgate
"$PY" -c 'import websocket' 2>/dev/null || skip "python3-websocket is not installed"

make_certs
make_passwd alice 'web pw'
make_passwd bob 'bob pw'
start_qemu d unix
start_qemu e qmp
# a small novnc_dir of our own: two files, a symlink inside, two out of it
N=$T/novnc
mkdir -p "$N/app" "$N/core/sub"
echo '<!DOCTYPE html><title>t80</title>' >"$N/vnc.html"
echo 'export const x = 1;' >"$N/app/ui.js"
ln -s vnc.html "$N/vnc_auto.html"
ln -s /etc/passwd "$N/leak.js"
ln -s .. "$N/up"
echo 'secret' >"$T/secret.js"
WP=$(free_port); SP=$(free_port)
write_config "$T/vmgate.conf" web_port="$WP" novnc_dir="$N" web_origins="https://console.example.org" -- \
    vm d vnc="${QEMU_BACKEND[d]}" users=alice \
    vm e vnc="${QEMU_BACKEND[e]}" users=bob \
    vm s spice="unix:$T/none.spice" spice_port="$SP" users=alice
start_vmgate "$T/vmgate.conf" 1
expect_log "listening for the browser console \(web\) on 127.0.0.1:$WP"

W=wss://127.0.0.1:$WP/vnc
O=https://127.0.0.1:$WP
ws() { "$PY" "$TOOLS/wsrfb.py" "$@"; }

out=$(ws login "$W/d" "$CA" "$O" alice 'web pw') || fail "login: $out"
[[ $out == "ok 720 400 QEMU (d)" ]] || fail "login to d: $out"
expect_log "conn=[0-9]+ vm=d via=web user=alice from=127.0.0.1: session started \(backend unix:"
expect_log "vm=d via=web user=alice from=127.0.0.1: session ended"
out=$(ws login "$W/e" "$CA" "$O" bob 'bob pw') || fail "login to e: $out"
[[ $out == "ok 720 400 QEMU (e)" ]] || fail "login to e (qmp handoff): $out"

want="refused Authentication failed"
for case in "d alice wrong" "nosuch alice web pw" "e alice web pw" "s alice web pw"; do
    set -- $case
    vm=$1 user=$2; shift 2
    out=$(ws login "$W/$vm" "$CA" "$O" "$user" "$*") || fail "$case: $out"
    [[ $out == "$want" ]] || fail "$case: '$out', want '$want'"
    say "$vm/$user: $out"
done
expect_log "vm=\?nosuch via=web from=127.0.0.1: login failed for user \"alice\""
expect_log "vm=e via=web from=127.0.0.1: login failed for user \"alice\": .*not in users"
expect_log "vm=\?s via=web from=127.0.0.1: login failed for user \"alice\""

# Origin: foreign and missing are 403 (no RFB byte), the listed one gets in
[ "$(ws status "$W/d" "$CA" https://evil.example)" = 403 ] || fail "foreign Origin not refused"
[ "$(ws status "$W/d" "$CA" "https://127.0.0.1:$((WP + 1))")" = 403 ] || fail "other port's Origin not refused"
[ "$(ws status "$W/d" "$CA" https://console.example.org)" = 101 ] || fail "web_origins entry refused"
KEY='Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
UPG="GET /vnc/d HTTP/1.1\r\nHost: 127.0.0.1:$WP\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n$KEY"
out=$(ws raw "127.0.0.1:$WP" "$CA" "$UPG\r\n")
[[ $out == "HTTP/1.1 403 Forbidden"* && $out == *"body 14" ]] || fail "no Origin: $out"
out=$(ws raw "127.0.0.1:$WP" "$CA" "${UPG}Origin: $O\r\nSec-WebSocket-Protocol: binary\r\n\r\n")
[[ $out == "HTTP/1.1 101 Switching Protocols"* ]] || fail "upgrade: $out"
grep -q "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" <<<"$out" || fail "accept key: $out"
grep -q "Sec-WebSocket-Protocol: binary" <<<"$out" || fail "binary not echoed: $out"
# the RFB version came as one binary frame of 12 bytes after the head
[[ $out == *"body 14" ]] || fail "after the 101: $out"
out=$(ws raw "127.0.0.1:$WP" "$CA" "GET /vnc/d HTTP/1.1\r\nHost: 127.0.0.1:$WP\r\nOrigin: $O\r\n\r\n")
[[ $out == "HTTP/1.1 426 "* ]] || fail "plain GET of the socket path: $out"
out=$(ws raw "127.0.0.1:$WP" "$CA" "${UPG/Version: 13/Version: 8}Origin: $O\r\n\r\n")
[[ $out == "HTTP/1.1 426 "* ]] && grep -q "Sec-WebSocket-Version: 13" <<<"$out" || fail "version 8: $out"
out=$(ws frames "$W/d" "$CA" "$O") || fail "frames: $out"
say "frames: $out"
expect_log "vm=d via=web from=127.0.0.1: viewer: WebSocket: text frame"

# static files
get() { ws raw "127.0.0.1:$WP" "$CA" "GET $1 HTTP/1.1\r\nHost: 127.0.0.1:$WP\r\n\r\n"; }
out=$(get /vnc.html)
for h in "HTTP/1.1 200 OK" "Content-Type: text/html; charset=utf-8" \
         "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors 'none'" \
         "X-Content-Type-Options: nosniff" "Strict-Transport-Security: max-age=31536000" \
         "body $(stat -c %s "$N/vnc.html")"; do
    grep -qF "$h" <<<"$out" || fail "GET /vnc.html lacks '$h': $out"
done
out=$(get "/?autoconnect=1")
[[ $out == "HTTP/1.1 200 OK"* ]] || fail "/ is not vnc.html: $out"
out=$(get /vnc_auto.html)
[[ $out == "HTTP/1.1 200 OK"* ]] || fail "symlink inside novnc_dir refused: $out"
out=$(get /app/ui.js)
grep -q "Content-Type: text/javascript" <<<"$out" || fail "module MIME type: $out"
for p in /../secret.js /app/../../secret.js /%2e%2e/secret.js /.%2e/secret.js /%2E%2E/secret.js \
         /up/secret.js /leak.js /app /app/ /core/sub /core/sub/ //etc/passwd /app%2fui.js \
         /.hidden.js /nosuch.js "/app/ui.js/" '/..\\secret.js'; do
    out=$(get "$p")
    [[ $out == "HTTP/1.1 404 Not Found"* ]] || fail "GET $p: $out"
    grep -q "secret\|root:" <<<"$out" && fail "GET $p leaked"
done
say "traversal attempts: 404"
out=$(ws raw "127.0.0.1:$WP" "$CA" "POST /vnc.html HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
[[ $out == "HTTP/1.1 405 Method Not Allowed"* ]] && grep -q "Allow: GET" <<<"$out" || fail "POST: $out"
out=$(ws raw "127.0.0.1:$WP" "$CA" "GET /vnc.html HTTP/1.1\r\n\r\n")
[[ $out == "HTTP/1.1 400 Bad Request"* ]] || fail "no Host: $out"
vmgate_alive || fail "vmgate died"
stop_vmgate
