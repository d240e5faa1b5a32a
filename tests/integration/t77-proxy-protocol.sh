#!/bin/bash
# t77-proxy-protocol: vmgate behind a real haproxy (TCP mode, send-proxy-v2).
#
# One network namespace, addresses on its lo: vmgate on 10.77.0.1, haproxy
# listening on 10.77.0.3 and connecting to vmgate from 10.77.0.2 (the only
# address in proxy_protocol), viewers at 10.77.0.7 and 10.77.0.8 (not
# loopback: loopback is never banned).  [firewall] ban_after = 3,
# ban_time = 4s; audit on.  Asserts:
#   - a VeNCrypt login through haproxy from 10.77.0.8: ok; the log says
#     "viewer 10.77.0.8 through balancer 10.77.0.2", the audit's login and
#     session-open have source 10.77.0.8 (not haproxy's address);
#   - 3 failed logins from 10.77.0.7 through haproxy: the audit's login
#     failed lines name 10.77.0.7, the helper bans 10.77.0.7 (its log, the
#     kernel ban set in `vmgate firewall status`, an audit `ban` event with
#     source 10.77.0.7 and an RFC 3339 `until`), never 10.77.0.2;
#   - 10.77.0.7 through haproxy is then refused by vmgate after the header
#     ("banned until"), while 10.77.0.8 through the same haproxy logs in;
#   - after ban_time the audit has `unban` for 10.77.0.7 and it logs in again;
#   - a PROXY header sent straight to vmgate from 10.77.0.8 (not listed):
#     refused ("not in proxy_protocol"), on the VNC and the SPICE port;
#   - straight from the listed 10.77.0.2 without a header: an RFB version
#     is refused ("bad PROXY header ... no PROXY v2 signature"), silence is
#     closed at first_byte_timeout ("no PROXY header from balancer"), a v1
#     text header is refused by name;
#   - the SPICE and web listeners take the header too: a TLS handshake
#     through haproxy on the SPICE port, an HTTPS GET / through haproxy on
#     web_port (the login page), each logged as the viewer's address.
. "$(dirname "$0")/lib.sh"
need_root "t77-proxy-protocol"
need_vmgate
need_tools t77-proxy-protocol ip nft haproxy

NS=vmgt-pp-$$
netns_add "$NS"
for a in 1 2 3 7 8; do ip -n "$NS" addr add "10.77.0.$a/32" dev lo; done
in_ns() { ip netns exec "$NS" "$@"; }
# vmgate itself runs in the namespace: start_vmgate runs $VMGATE
REAL_VMGATE=$VMGATE
VMGATE=$T/vmgate-ns
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS" "$REAL_VMGATE" >"$VMGATE"
chmod 755 "$VMGATE"

make_certs
make_passwd alice 'alice-good-pw'
start_qemu a unix
VNC=5902 SPICE=5932 WEB=8443            # in the namespace: no clash with other tests
HVNC=7902 HSPICE=7932 HWEB=7443
AUDIT=$T/audit.jsonl
write_config "$T/vmgate.conf" address=10.77.0.1 login_timeout=8s first_byte_timeout=2s \
    fail_delay=0 audit="$AUDIT" web_port=$WEB proxy_protocol=10.77.0.2 -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port=$VNC spice="unix:$T/no-spice.sock" \
    spice_port=$SPICE users=alice
cat >>"$T/vmgate.conf" <<EOF

[firewall]
protect = 5900-6100
ban_after = 3
ban_window = 1m
ban_time = 4s
EOF
start_vmgate "$T/vmgate.conf" 2

cat >"$T/haproxy.cfg" <<EOF
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen vnc
    bind 10.77.0.3:$HVNC
    server s 10.77.0.1:$VNC send-proxy-v2 source 10.77.0.2
listen spice
    bind 10.77.0.3:$HSPICE
    server s 10.77.0.1:$SPICE send-proxy-v2 source 10.77.0.2
listen web
    bind 10.77.0.3:$HWEB
    server s 10.77.0.1:$WEB send-proxy-v2 source 10.77.0.2
EOF
add_log "$T/haproxy.log"
in_ns haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 </dev/null &
track $!
hp_up() { in_ns "$PY" -c "import socket; socket.create_connection(('10.77.0.3', $HVNC), 1).close()"; }
wait_for 10 hp_up || fail "haproxy did not come up"

rfb() {   # SOURCE HOST PORT USER PASS OUT: a VeNCrypt login, output in OUT
    in_ns "$PY" "$TOOLS/rawrfb.py" --source "$1" --timeout 10 login "$2" "$3" "$CA" "$4" "$5" \
        >"$6" 2>&1 || true
}
audit_count() {   # PYEXPR: audit lines (parsed as e) for which PYEXPR is true
    "$PY" - "$AUDIT" "$1" <<'PYEOF'
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    if eval(sys.argv[2], {}, {"e": e}):
        n += 1
print(n)
PYEOF
}
audit_has() { [ "$(audit_count "$1")" -ge "${2:-1}" ]; }
expect_audit() {
    wait_for 10 audit_has "$1" "${2:-1}" || { cat "$AUDIT"; fail "audit has no line with: $1"; }
}
banned() { in_ns "$REAL_VMGATE" firewall status -c "$T/vmgate.conf" 2>/dev/null | grep -Eq "^  $1 +[0-9hms]+ left"; }

# ---- a login through haproxy is the viewer's, not haproxy's ----
rfb 10.77.0.8 10.77.0.3 $HVNC alice 'alice-good-pw' "$T/ok1.txt"
grep -qx 'result=ok' "$T/ok1.txt" || { cat "$T/ok1.txt"; fail "login through haproxy failed"; }
expect_log 'from=10.77.0.2: viewer 10.77.0.8 through balancer 10.77.0.2 \(PROXY v2\)'
expect_log 'from=10.77.0.8: user "alice" authenticated'
expect_audit 'e["event"] == "login" and e["result"] == "ok" and e["source"] == "10.77.0.8"'
expect_audit 'e["event"] == "session-open" and e["source"] == "10.77.0.8"'
[ "$(audit_count 'e["source"] == "10.77.0.2"')" = 0 ] || { cat "$AUDIT"; fail "the audit names haproxy's address"; }
say "login through haproxy: log and audit show 10.77.0.8"

# ---- failed logins through haproxy ban the client, not haproxy ----
for i in 1 2 3; do
    rfb 10.77.0.7 10.77.0.3 $HVNC alice wrong "$T/bad$i.txt"
    grep -qx 'result=failed' "$T/bad$i.txt" || { cat "$T/bad$i.txt"; fail "bad login $i did not fail"; }
done
expect_audit 'e["event"] == "login" and e["result"] == "failed" and e["source"] == "10.77.0.7"' 3
expect_log 'firewall: banned 10.77.0.7 for 4s after 3 failed logins'
wait_for 5 banned '10\.77\.0\.7' || fail "10.77.0.7 is not in the kernel ban set"
banned '10\.77\.0\.2' && fail "haproxy's address 10.77.0.2 was banned"
log_has 'banned 10\.77\.0\.2' && fail "haproxy's address 10.77.0.2 was banned"
expect_audit 'e["event"] == "ban" and e["source"] == "10.77.0.7" and e["conn"] is None and e["until"].endswith("Z") and len(e["until"]) == 24'
say "3 failed logins from 10.77.0.7 through haproxy: 10.77.0.7 banned (log, nft, audit ban)"

# the banned client through haproxy is refused by vmgate; another still logs in
rfb 10.77.0.7 10.77.0.3 $HVNC alice 'alice-good-pw' "$T/banned.txt"
grep -q 'result=ok' "$T/banned.txt" && fail "the banned client logged in through haproxy"
expect_log 'refused viewer 10.77.0.7 \(through balancer 10.77.0.2\): banned until 20[0-9-]+T'
rfb 10.77.0.8 10.77.0.3 $HVNC alice 'alice-good-pw' "$T/ok2.txt"
grep -qx 'result=ok' "$T/ok2.txt" || { cat "$T/ok2.txt"; fail "another client through the same haproxy could not log in"; }
say "banned client refused after the header; another client through haproxy logs in"

# ---- the ban ends: unban in the audit, the client is back ----
expect_audit 'e["event"] == "unban" and e["source"] == "10.77.0.7"'
rfb 10.77.0.7 10.77.0.3 $HVNC alice 'alice-good-pw' "$T/ok3.txt"
grep -qx 'result=ok' "$T/ok3.txt" || { cat "$T/ok3.txt"; fail "10.77.0.7 still refused after its ban ended"; }
say "after ban_time: audit unban, 10.77.0.7 logs in again"

# ---- headers where they do not belong, none where one must be ----
pp() {   # SOURCE PORT WHAT TLS: connect from SOURCE to vmgate, send WHAT, report
    in_ns "$PY" - "$@" <<'PYEOF'
import socket, struct, sys, time
src, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.bind((src, 0))
s.settimeout(6)
s.connect(("10.77.0.1", port))
sig = b"\r\n\r\n\x00\r\nQUIT\n"
blk = socket.inet_aton("192.0.2.9") + socket.inet_aton("10.77.0.1") + struct.pack(">HH", 4000, port)
data = {"v2": sig + b"\x21\x11" + struct.pack(">H", len(blk)) + blk,
        "v1": b"PROXY TCP4 192.0.2.9 10.77.0.1 4000 %d\r\n" % port,
        "rfb": b"RFB 003.008\n", "nothing": b""}[what]
if data:
    s.sendall(data)
t0 = time.monotonic()
got = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
except (socket.timeout, ConnectionResetError):
    pass
print("closed_after=%.1f got=%r" % (time.monotonic() - t0, got[:20]))
PYEOF
}
pp 10.77.0.8 $VNC v2 >"$T/stray.txt"
expect_log 'from=10.77.0.8: refused: a PROXY header from 10.77.0.8, which is not in proxy_protocol'
pp 10.77.0.8 $SPICE v2 >"$T/stray-spice.txt"
wait_for 5 log_has 'from=10.77.0.8: refused: a PROXY header from 10.77.0.8, which is not in proxy_protocol' || true
n=$(grep -c 'refused: a PROXY header from 10.77.0.8, which is not in proxy_protocol' "$VMGATE_LOG" || true)
[ "$n" -ge 2 ] || fail "a PROXY header on the SPICE port from an unlisted source was not named ($n lines)"
say "a PROXY header from an unlisted source: refused with a clear line (VNC, SPICE)"
pp 10.77.0.2 $VNC rfb >"$T/nohdr.txt"
expect_log 'from=10.77.0.2: refused: bad PROXY header from balancer 10.77.0.2: no PROXY v2 signature'
# judged on the 12 bytes that came, not after waiting for 16
grep -Eq 'closed_after=0\.' "$T/nohdr.txt" || { cat "$T/nohdr.txt"; fail "the RFB-first refusal was not immediate"; }
pp 10.77.0.2 $VNC nothing >"$T/silent.txt"
expect_log 'refused: no PROXY header from balancer 10.77.0.2 within 2s'
pp 10.77.0.2 $VNC v1 >"$T/v1.txt"
expect_log 'bad PROXY header from balancer 10.77.0.2: a PROXY v1 \(text\) header'
grep -q "RFB" "$T/nohdr.txt" "$T/silent.txt" "$T/v1.txt" && fail "vmgate greeted a listed source before its header"
say "a listed source without a valid header: refused (RFB first, silence, v1)"

# ---- SPICE and web through haproxy ----
in_ns "$PY" - "$CA" $HSPICE $HWEB >"$T/tls.txt" 2>&1 <<'PYEOF' || { cat "$T/tls.txt"; fail "TLS through haproxy failed"; }
import socket, ssl, sys
ca, hspice, hweb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
def conn(port):
    s = socket.socket()
    s.bind(("10.77.0.7", 0))
    s.settimeout(10)
    s.connect(("10.77.0.3", port))
    return ctx.wrap_socket(s, server_hostname="localhost")
t = conn(hspice)
print("spice", t.version())
t.close()
t = conn(hweb)
t.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = t.recv(65536)
    if not d:
        break
    data += d
print("web", data.split(b"\r\n", 1)[0].decode())
assert data.startswith(b"HTTP/1.1 200"), data[:200]
PYEOF
grep -q '^spice TLS' "$T/tls.txt" || { cat "$T/tls.txt"; fail "no TLS through haproxy on the SPICE port"; }
n=$(grep -c 'viewer 10.77.0.7 through balancer 10.77.0.2' "$VMGATE_LOG" || true)
[ "$n" -ge 6 ] || fail "SPICE and web through haproxy not logged as 10.77.0.7 ($n lines)"
say "SPICE (TLS) and web (HTTPS GET /) through haproxy: $(tr '\n' ' ' <"$T/tls.txt")"
vmgate_alive || fail "vmgate died"
true
