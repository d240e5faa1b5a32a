#!/bin/bash
# t98-novnc-17: npm's noVNC 1.7.0 as novnc_dir (issue 13: "works with Debian's
# noVNC 1.3 and with npm's 1.7.0 placed in novnc_dir").  `npm pack
# @novnc/novnc@1.7.0` (or the tarball in NOVNC17_TGZ, for offline runs; SKIP
# when neither is there) is unpacked as novnc_dir.  The npm package is the
# library only — core/ (rfb.js), vendor/ (pako), no vnc.html, no app/ — so
# vnc.html is a 404 and the console is vmgate's own page (web_dir, which
# imports /core/rfb.js from novnc_dir).  Headless Chromium as in t87/t91: a
# wrong password refused, the list, the console's canvas equal to QEMU's
# screendump, a VM outside the ACL refused with SecurityResult's reason, the
# clipboard field's ClientCutText.  What differs from 1.3 (core/rfb.js): 1.7
# takes the first security type and VeNCrypt subtype it supports in the
# server's order (1.3 looks for 19, then 256), and sends the Plain lengths,
# user and password as one WebSocket message (1.3: three); vmgate offers
# only [19] and [256] and reads frames as a byte stream, so both work.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/browser.sh"
need_vmgate
command -v chromium >/dev/null || skip "chromium is not installed"
command -v certutil >/dev/null || skip "certutil (libnss3-tools) is not installed"
"$PY" -c 'import websocket' 2>/dev/null || skip "python3-websocket is not installed"

# --- noVNC 1.7.0 from npm ----------------------------------------------------
TGZ=${NOVNC17_TGZ:-}
if [ -z "$TGZ" ]; then
    command -v npm >/dev/null || skip "npm is not installed and NOVNC17_TGZ is not set"
    mkdir -p "$T/npm"
    if ! (cd "$T/npm" && npm_config_cache=$T/npm-cache npm_config_update_notifier=false \
            npm_config_fetch_retries=1 timeout 120 npm pack --loglevel=error @novnc/novnc@1.7.0) \
            >"$T/npm.log" 2>&1; then
        skip "npm pack @novnc/novnc@1.7.0 failed (registry not reachable?): $(grep -m1 '^npm error' "$T/npm.log" || tail -n 1 "$T/npm.log")"
    fi
    TGZ=$T/npm/novnc-novnc-1.7.0.tgz
fi
[ -s "$TGZ" ] || fail "no tarball $TGZ"
mkdir -p "$T/novnc17"
tar -xzf "$TGZ" -C "$T/novnc17" || fail "cannot unpack $TGZ"
N=$T/novnc17/package
ver=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$N/package.json")
[ "$ver" = 1.7.0 ] || fail "the package is noVNC $ver, not 1.7.0"
[ -f "$N/core/rfb.js" ] && [ -d "$N/vendor/pako" ] || fail "no core/rfb.js or vendor/pako in the package"
# the layout this test relies on: the library only (should npm ship the app
# one day, vnc.html would need a test of its own, like t87's)
[ ! -e "$N/vnc.html" ] && [ ! -e "$N/app" ] ||
    fail "npm's noVNC 1.7.0 now ships vnc.html or app/: test noVNC's own page too"
say "noVNC $ver from $(basename "$TGZ"): $(cd "$N" && echo *)"

make_certs
make_passwd alice 'npm pw'
make_passwd bob 'bob pw'
start_qemu d unix
WP=$(free_port)
write_config "$T/vmgate.conf" web_port="$WP" web_dir="$ROOT/web" novnc_dir="$N" -- \
    vm d vnc="${QEMU_BACKEND[d]}" users=alice \
    vm e vnc="unix:$T/e.sock" users=bob
start_vmgate "$T/vmgate.conf" 0
expect_log "listening for the browser console \(web\) on 127.0.0.1:$WP"
B=https://127.0.0.1:$WP

get() { curl -sS --cacert "$CA" -o /dev/null -w '%{http_code} %{content_type}' "$B$1"; }
out=$(get /core/rfb.js)
[ "$out" = "200 text/javascript; charset=utf-8" ] || [ "$out" = "200 text/javascript" ] ||
    fail "GET /core/rfb.js from noVNC 1.7.0: $out"
out=$(get /vendor/pako/lib/zlib/inflate.js)
[[ $out == "200 text/javascript"* ]] || fail "GET pako from noVNC 1.7.0: $out"
out=$(get /vnc.html)
[[ $out == 404* ]] || fail "GET /vnc.html with npm's package (which has none): $out"
say "core/ and vendor/ served, vnc.html 404 (not in the npm package)"

# --- vmgate's page with noVNC 1.7.0 in a browser ------------------------------
start_browser
wait_guest_stable d
mkdir -p "$T/shots"
out=$(cd "$TOOLS" && "$PY" vmgate_page.py "$DP" "$B" alice 'npm pw' 'wrong pw' d e "$T/shots") ||
    fail "page: $out"
echo "$out"
grep -qx "refused Login refused: wrong user name or password." <<<"$out" ||
    fail "the wrong password was not refused in the page"
grep -qx "list d" <<<"$out" || fail "the list is not exactly d"
grep -qx "console 720 400" <<<"$out" || fail "noVNC 1.7.0 did not connect with the VM's size"
expect_log "vm=d via=web user=alice from=127.0.0.1: session started"
"$PY" "$TOOLS/imgcmp.py" notblank "$T/shots/canvas.png" || fail "the canvas is blank"
screendump d "$T/dump.png"
"$PY" "$TOOLS/imgcmp.py" compare "$T/shots/canvas.png" "$T/dump.png" ||
    fail "noVNC 1.7.0's canvas does not show what QEMU's screendump shows"
say "noVNC 1.7.0's canvas matches the screendump"
grep -qx "clipboard sent cut-text" <<<"$out" ||
    fail "noVNC 1.7.0 sent no ClientCutText for the page's clipboard field"
grep -qx "typed e securityfailure Authentication failed" <<<"$out" ||
    fail "a VM outside the ACL was not refused with SecurityResult's reason under noVNC 1.7.0"
expect_log "vm=e via=web from=127.0.0.1: login failed for user \"alice\": .*not in users"
vmgate_alive || fail "vmgate died"
exit 0
