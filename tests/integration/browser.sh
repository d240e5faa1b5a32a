# tests/integration/browser.sh — a headless Debian Chromium for the browser
# console tests (t87, t91), sourced after lib.sh.  The test CA is trusted
# through an NSS db in a temp HOME (no --ignore-certificate-errors), the
# profile is fresh, and the page is driven over the DevTools protocol by
# tests/tools/cdp.py (class Page) and the scripts that import it.

# Skip unless chromium, certutil, noVNC and python3-websocket are there.
need_browser() {
    command -v chromium >/dev/null || skip "chromium is not installed"
    command -v certutil >/dev/null || skip "certutil (libnss3-tools) is not installed"
    [ -f /usr/share/novnc/vnc.html ] && [ -f /usr/share/novnc/core/rfb.js ] ||
        skip "novnc is not installed (/usr/share/novnc)"
    "$PY" -c 'import websocket' 2>/dev/null || skip "python3-websocket is not installed"
}

# Start Chromium trusting $CA; sets DP, its DevTools port.
start_browser() {
    export HOME=$T/home
    mkdir -p "$HOME/.pki/nssdb"
    certutil -d "sql:$HOME/.pki/nssdb" -N --empty-password || fail "certutil -N"
    certutil -d "sql:$HOME/.pki/nssdb" -A -t C,, -n vmgate -i "$CA" || fail "certutil -A"
    DP=$(free_port)
    add_log "$T/chromium.log"
    chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --user-data-dir="$T/profile" \
        --remote-debugging-address=127.0.0.1 --remote-debugging-port="$DP" about:blank \
        >"$T/chromium.log" 2>&1 </dev/null &
    track $!
    wait_for 30 port_listening 127.0.0.1 "$DP" || fail "chromium's DevTools port did not open"
}
