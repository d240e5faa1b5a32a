#!/bin/bash
# t91-web-page: vmgate's own page (GET /) in a real browser.  Headless Debian
# Chromium (the test CA in an NSS db, as in t87) opens https://127.0.0.1:PORT/:
# a wrong password is refused in the page; the right one lists exactly the
# VMs the user may open (links whose text is the name); a click opens the
# console with noVNC, whose canvas shows what QEMU's screendump shows; a VM
# outside the ACL typed as a WebSocket URL is refused; nothing lands in
# cookies or storage; the page's clipboard field sends a ClientCutText on
# the console's WebSocket (QEMU here has no clipboard peer, so the text
# goes no further: the clipboard policy and audit are t5x's).  /api/vms
# never asks the browser for credentials
# (no WWW-Authenticate) and counts as a login (audit: login, via web).
# Keep-alive: one connection serves a page's files; 1000 kept-alive
# connections from 125 sources do not starve a login.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/browser.sh"
need_vmgate
need_browser

make_certs
make_passwd alice 'page pw'
make_passwd bob 'bob pw'
start_qemu d unix
WP=$(free_port)
AUDIT=$T/audit.jsonl
# alice may open d and g (g's backend is never reached), bob e; s has no vnc backend
write_config "$T/vmgate.conf" web_port="$WP" web_dir="$ROOT/web" audit="$AUDIT" -- \
    vm d vnc="${QEMU_BACKEND[d]}" users=alice \
    vm e vnc="unix:$T/e.sock" users=bob \
    vm g vnc="unix:$T/g.sock" "users=alice bob"
start_vmgate "$T/vmgate.conf" 0
expect_log "listening for the browser console \(web\) on 127.0.0.1:$WP"
B=https://127.0.0.1:$WP

# --- the API as a script sees it -------------------------------------------
api() {   # USER:PASS -> "STATUS BODY" and the head in $T/api.head
    curl -sS --cacert "$CA" -D "$T/api.head" -o "$T/api.body" -w '%{http_code}' \
        -u "$1" "$B/api/vms"
    echo " $(cat "$T/api.body")"
}
out=$(api 'alice:page pw')
[ "$out" = '200 {"user":"alice","vms":["d","g"],"truncated":false}' ] || fail "/api/vms: $out"
out=$(api 'alice:nope')
[ "$out" = '401 {"error":"login refused"}' ] || fail "/api/vms, wrong password: $out"
grep -qi '^WWW-Authenticate' "$T/api.head" && fail "a 401 asks the browser for credentials"
out=$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' "$B/api/vms")
[ "$out" = 401 ] || fail "/api/vms without credentials: $out"
expect_log "vm=- via=web from=127.0.0.1: user \"alice\" authenticated \(VM list: 2\)"
expect_log "vm=- via=web from=127.0.0.1: login failed for user \"alice\""
"$PY" - "$AUDIT" <<'PY' || fail "no login events with via=web in the audit trail"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
logins = [e for e in ev if e.get("event") == "login" and e.get("via") == "web"]
ok = [e for e in logins if e.get("result") == "ok" and e.get("user") == "alice"]
bad = [e for e in logins if e.get("result") == "failed"]
sys.exit(0 if ok and bad else 1)
PY
say "/api/vms: list, 401 without WWW-Authenticate, audited"

# --- keep-alive: a page's files over one connection --------------------------
n=$(curl -sS --cacert "$CA" -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects}\n' \
    "$B/" "$B/vmgate/vmgate.js" "$B/vmgate/vmgate.css" | paste -sd+ | bc)
[ "$n" = 1 ] || fail "three files took $n connections"
h=$(curl -sS --cacert "$CA" -D - -o /dev/null "$B/")
grep -qF "Content-Security-Policy: default-src 'self'" <<<"$h" || fail "no CSP on /: $h"
grep -q "<script" "$ROOT/web/index.html" && ! grep -q '<script type="module" src=' "$ROOT/web/index.html" &&
    fail "inline script in web/index.html"
say "keep-alive: /, vmgate.js, vmgate.css over $n connection"

# --- kept-alive connections do not hold login slots ---------------------------
# A: max_unauth_per_source (8) kept-alive connections from 127.0.0.1, then a
#    login from 127.0.0.1 (were they still counted, the cap would refuse it);
# B: 1000 kept-alive attempts from 125 sources (8 each): still open at the
#    end at most max_unauth (64), and a login is answered.
out=$("$PY" - "$WP" "$CA" <<'PY'
import base64, http.client, re, select, socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)

def keepalive(src):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    t.sendall(b"GET /vmgate/vmgate.css HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while True:             # the head and the whole body (Content-Length)
        head, sep, body = data.partition(b"\r\n\r\n")
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I) if sep else None
        if m and len(body) >= int(m.group(1)):
            break
        chunk = t.recv(65536)
        if not chunk:
            break
        data += chunk
    if b"Connection: keep-alive" in data:
        return t
    t.close()
    return None

def login():               # the status, or 0: the connection was refused
    try:
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
        c.request("GET", "/api/vms", headers={"Authorization": "Basic " +
                  base64.b64encode(b"alice:page pw").decode()})
        return c.getresponse().status
    except (OSError, ssl.SSLError, http.client.HTTPException):
        return 0

def still_open(socks):
    n = 0
    for t in socks:
        r, _, _ = select.select([t], [], [], 0)
        if not r and not t.pending():
            n += 1
            continue
        try:
            if t.recv(1):
                n += 1
        except (OSError, ssl.SSLError):
            pass
    return n

mine = [keepalive("127.0.0.1") for _ in range(8)]
print("A kept %d login %d" % (sum(t is not None for t in mine), login()))
kept, closed, refused = [], 0, 0
for i in range(1000):
    try:
        t = keepalive("127.0.1.%d" % (1 + i // 8))
    except (OSError, ssl.SSLError):
        refused += 1
        continue
    if t:
        kept.append(t)
    else:
        closed += 1
print("B kept %d open %d closed %d refused %d login %d" % (
    len(kept), still_open(kept), closed, refused, login()))
PY
) || fail "keep-alive flood: $out"
echo "$out"
grep -qx "A kept 8 login 200" <<<"$out" || fail "kept-alive connections held a login's slot"
[[ $out =~ B\ kept\ [0-9]+\ open\ ([0-9]+)\ closed\ [0-9]+\ refused\ 0\ login\ 200 ]] ||
    fail "keep-alive flood: $out"
[ "${BASH_REMATCH[1]}" -le 64 ] || fail "more kept-alive connections open than max_unauth: $out"
vmgate_alive || fail "vmgate died"

# --- the browser ------------------------------------------------------------
start_browser
wait_guest_stable d
mkdir -p "$T/shots"
out=$(cd "$TOOLS" && "$PY" vmgate_page.py "$DP" "$B" alice 'page pw' 'wrong pw' d e "$T/shots") ||
    fail "page: $out"
echo "$out"
grep -qx "refused Login refused: wrong user name or password." <<<"$out" ||
    fail "the wrong password was not refused in the page"
grep -qx "list d g" <<<"$out" || fail "the list is not exactly d g"
grep -qx "login form gone" <<<"$out" || fail "the login form still shows after the login"
grep -qx "console 720 400" <<<"$out" || fail "the console did not open with the VM's size"
grep -qx "typed e securityfailure Authentication failed" <<<"$out" ||
    fail "a VM outside the ACL typed as a WebSocket URL was not refused"
grep -qx "cookies 0 storage 0" <<<"$out" || fail "the page kept something in cookies or storage"
expect_log "vm=d via=web user=alice from=127.0.0.1: session started"
grep -qx "clipboard sent cut-text" <<<"$out" ||
    fail "the page's clipboard field sent no ClientCutText on the console's WebSocket"
expect_log "vm=e via=web from=127.0.0.1: login failed for user \"alice\": .*not in users"
"$PY" "$TOOLS/imgcmp.py" notblank "$T/shots/canvas.png" || fail "the canvas is blank"
screendump d "$T/dump.png"
"$PY" "$TOOLS/imgcmp.py" compare "$T/shots/canvas.png" "$T/dump.png" ||
    fail "the page's canvas does not show what QEMU's screendump shows"
say "canvas matches the screendump"
# the README's screenshots come from here (VMGATE_SHOTS=DIR keeps them)
[ -n "${VMGATE_SHOTS:-}" ] && cp "$T/shots/list.png" "$VMGATE_SHOTS/web-login.png" &&
    cp "$T/shots/console.png" "$VMGATE_SHOTS/web-console.png"
vmgate_alive || fail "vmgate died"
exit 0
