#!/bin/bash
# t85-metrics: metrics = 127.0.0.1:PORT.  With a TigerVNC session open and
# one failed login, GET /metrics parses with prometheus_client (Debian's
# python3-prometheus-client) and shows vmgate_sessions{vm="a",via="tls"} 1,
# vmgate_logins_total ok 1 / failed 1, bytes both ways, the login seconds
# histogram with two observations; after the viewer quits the gauge is 0.
# HTTP garbage: another path 404, POST 405, junk 400, a head over 4 KiB
# 431, a silent connection closed after the timeout; vmgate keeps serving.
. "$(dirname "$0")/lib.sh"
need_vmgate
"$PY" -c 'import prometheus_client' 2>/dev/null || skip "python3-prometheus-client not installed"

make_certs
make_passwd alice 'alice pw 82'
start_qemu a unix
PORT=$(free_port)
MPORT=$(free_port)
write_config "$T/vmgate.conf" metrics="127.0.0.1:$MPORT" -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users=alice
start_vmgate "$T/vmgate.conf"
expect_log "metrics on http://127.0.0.1:$MPORT/metrics"

vncviewer_start v1 alice 'alice pw 82' "$PORT"
expect_viewer_connected v1
"$PY" "$TOOLS/rawrfb.py" login 127.0.0.1 "$PORT" "$CA" alice wrong >/dev/null 2>&1 || true
sleep 1

check_metrics() {   # SESSIONS: fetch, parse, assert
    "$PY" - "$MPORT" "$1" <<'PYEOF'
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
port, want_sessions = sys.argv[1], int(sys.argv[2])
r = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=5)
assert r.status == 200, r.status
ctype = r.headers["Content-Type"]
assert ctype.startswith("text/plain; version=0.0.4"), ctype
fams = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
def val(name, sample=None, **labels):
    for s in fams[name].samples:
        if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError("no %s %s" % (name, labels))
assert fams["vmgate_sessions"].type == "gauge"
assert val("vmgate_sessions", vm="a", via="tls") == want_sessions, val("vmgate_sessions", vm="a", via="tls")
assert val("vmgate_logins", result="ok") == 1, val("vmgate_logins", result="ok")
assert val("vmgate_logins", result="failed") == 1
assert val("vmgate_bytes", vm="a", direction="from_vm") > 1000
assert val("vmgate_bytes", vm="a", direction="to_vm") > 10
assert fams["vmgate_login_seconds"].type == "histogram"
assert val("vmgate_login_seconds", "vmgate_login_seconds_count") == 2
assert val("vmgate_login_seconds", "vmgate_login_seconds_bucket", le="+Inf") == 2
print("metrics ok: %d families" % len(fams))
PYEOF
}
check_metrics 1 || fail "/metrics with a session open is not as expected"
stop_viewer v1
wait_for 10 check_metrics 0 >/dev/null 2>&1 || { check_metrics 0; fail "the session gauge did not go back to 0"; }

http_raw() {   # PYTHON-BYTES-EXPR: send, print the status line (or "closed")
    "$PY" - "$MPORT" "$1" <<'PYEOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
data = eval(sys.argv[2])
try:
    s.sendall(data)
except OSError:
    pass
out = b""
t0 = time.monotonic()
while True:
    try:
        d = s.recv(65536)
    except (socket.timeout, ConnectionResetError):
        break
    if not d:
        break
    out += d
line = out.split(b"\r\n", 1)[0].decode("latin-1")
print(line if line else "closed after %.0fs" % (time.monotonic() - t0))
PYEOF
}
r=$(http_raw 'b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"'); [ "$r" = "HTTP/1.1 404 Not Found" ] || fail "GET /: $r"
r=$(http_raw 'b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"'); [ "$r" = "HTTP/1.1 405 Method Not Allowed" ] || fail "POST: $r"
r=$(http_raw 'b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(100) + b"\n"'); [ "$r" = "HTTP/1.1 400 Bad Request" ] || fail "TLS junk: $r"
r=$(http_raw 'b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"a" * 5000 + b"\r\n\r\n"'); [ "$r" = "HTTP/1.1 431 Request Header Fields Too Large" ] || fail "long head: $r"
r=$(http_raw 'b"GET /metrics HTTP/1.1\r\n"'); [[ $r == "closed after "[4-7]s ]] || fail "a silent client: $r"
vmgate_alive || fail "vmgate died on HTTP garbage"
check_metrics 0 >/dev/null || fail "/metrics no longer served after the garbage"
stop_vmgate
