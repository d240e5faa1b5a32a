#!/bin/bash
# t99-metrics-processes: /metrics with processes = 2 is the sum over both
# network processes, and bans made by hand are counted and audited.
#
# vmgate in a network namespace (10.99.0.1), processes = 2, metrics on
# 10.99.0.1:PORT, an audit file, a [firewall] section (so the table exists).
#  - One held VNC session is served by net2 (net1 stopped) and one by net1
#    (net2 stopped), as the log's "authenticated" lines show; one failed
#    login; one RFB garbage handshake.  /metrics (parsed with
#    prometheus_client) says vmgate_sessions{vm="a",via="tls"} 2,
#    vmgate_logins_total ok 2 / failed 1, handshake failures kind="rfb" >= 1,
#    vmgate_network_processes = vmgate_network_processes_answered = 2.
#  - `vmgate firewall ban 10.99.0.9 --for 1h`: vmgate_bans 1 and exactly one
#    audit `ban` event for 10.99.0.9 with by "admin" (two processes);
#    `vmgate firewall unban 10.99.0.9`: vmgate_bans 0, one `unban` by admin.
#  - net2 stopped: /metrics still answers (after the 1 s peer timeout) with
#    net1's counts and vmgate_network_processes_answered 1.
. "$(dirname "$0")/lib.sh"
need_root "t99-metrics-processes"
need_vmgate
need_tools t99-metrics-processes ip nft
"$PY" -c 'import prometheus_client' 2>/dev/null || skip "python3-prometheus-client not installed"

NS=vmgt-mp-$$
netns_add "$NS"
ip -n "$NS" addr add 10.99.0.1/32 dev lo
REAL_VMGATE=$VMGATE
VMGATE=$T/vmgate-ns
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS" "$REAL_VMGATE" >"$VMGATE"
chmod 755 "$VMGATE"
nsx() { ip netns exec "$NS" "$@"; }

make_certs
make_passwd alice 'alice pw 99'
start_qemu a unix
AUDIT=$T/audit.jsonl
MPORT=9184
write_config "$T/vmgate.conf" address=10.99.0.1 audit="$AUDIT" processes=2 \
    metrics="10.99.0.1:$MPORT" -- vm a vnc="${QEMU_BACKEND[a]}" vnc_port=5902 users=alice
cat >>"$T/vmgate.conf" <<CONF

[firewall]
protect = 5900-6100
ban_after = 10
CONF
start_vmgate "$T/vmgate.conf" 1
P=$VMGATE_PID
ready_pid() {
    grep -E "^vmgate\[[0-9]+\] net$1: [a-z]+: network process $1/2 ready$" "$VMGATE_LOG" |
        tail -n 1 | sed -E 's/^vmgate\[([0-9]+)\].*/\1/'
}
expect_log "network process 1/2 ready"
expect_log "network process 2/2 ready"
declare -A NET=([1]=$(ready_pid 1) [2]=$(ready_pid 2))
AUTH_RE='user "alice" authenticated$'
n_auth() { grep -Ec -- "$AUTH_RE" "$VMGATE_LOG" || true; }
auth_more() { [ "$(n_auth)" -gt "$1" ]; }

# hold_on K: a held session served by netK (the other one stopped meanwhile)
hold_on() {
    local k=$1 other=$((3 - $1)) n
    n=$(n_auth)
    kill -STOP "${NET[$other]}"
    nsx "$PY" "$TOOLS/holdrfb.py" --timeout 10 10.99.0.1 5902 "$CA" alice 'alice pw 99' \
        >"$T/hold$k.txt" 2>&1 &
    track $!
    wait_for 10 grep -qx 'result=ok' "$T/hold$k.txt" ||
        { kill -CONT "${NET[$other]}"; cat "$T/hold$k.txt"; fail "held session $k did not log in"; }
    kill -CONT "${NET[$other]}"
    wait_for 5 auth_more "$n" || fail "no authenticated line for session $k"
    grep -E -- "$AUTH_RE" "$VMGATE_LOG" | tail -n 1 | grep -Eq "^vmgate\[${NET[$k]}\] net$k:" ||
        fail "session $k not served by net$k: $(grep -E -- "$AUTH_RE" "$VMGATE_LOG" | tail -n 1)"
    say "held session served by net$k"
}
hold_on 2
hold_on 1
nsx "$PY" "$TOOLS/rawrfb.py" login 10.99.0.1 5902 "$CA" alice wrong >"$T/bad.txt" 2>&1 || true
grep -qx 'result=failed' "$T/bad.txt" || { cat "$T/bad.txt"; fail "the wrong password did not fail"; }
nsx "$PY" "$TOOLS/rawrfb.py" garbage 10.99.0.1 5902 >/dev/null 2>&1 || true
sleep 0.5

# metrics PYTHON-ASSERTIONS: fetch /metrics in the namespace, parse, assert
# (val(name, sample=None, **labels) gives a sample's value)
metrics() {
    nsx "$PY" - "$MPORT" "$1" <<'PYEOF'
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
r = urllib.request.urlopen("http://10.99.0.1:%s/metrics" % sys.argv[1], timeout=5)
assert r.status == 200, r.status
fams = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
def val(name, sample=None, **labels):
    for s in fams[name].samples:
        if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError("no %s %s" % (name, labels))
for a in sys.argv[2].split(";"):
    assert eval(a), "%s (sessions %s, logins ok %s failed %s, bans %s, answered %s)" % (
        a, val("vmgate_sessions", vm="a", via="tls"), val("vmgate_logins", result="ok"),
        val("vmgate_logins", result="failed"), val("vmgate_bans"),
        val("vmgate_network_processes_answered"))
PYEOF
}
SUM='val("vmgate_sessions", vm="a", via="tls") == 2;val("vmgate_logins", result="ok") == 2;val("vmgate_logins", result="failed") == 1;val("vmgate_bytes", vm="a", direction="from_vm") > 0;val("vmgate_login_seconds", "vmgate_login_seconds_count") == 3;val("vmgate_handshake_failures", kind="rfb") >= 1;val("vmgate_network_processes") == 2;val("vmgate_network_processes_answered") == 2;val("vmgate_bans") == 0;val("vmgate_auth_queue") == 0'
metrics "$SUM" || fail "/metrics is not the sum of both network processes"
say "metrics: the sum of net1 and net2 (2 sessions, 2 ok, 1 failed)"

# ---- bans by hand
acount() {   # PYEXPR: audit lines (as e) for which it is true
    "$PY" - "$AUDIT" "$1" <<'PYEOF'
import json, sys
print(sum(1 for l in open(sys.argv[1], encoding="utf-8") if eval(sys.argv[2], {}, {"e": json.loads(l)})))
PYEOF
}
audited() { [ "$(acount "$1")" -ge 1 ]; }
BAN='e["event"] == "ban" and e["source"] == "10.99.0.9" and e["by"] == "admin"'
UNBAN='e["event"] == "unban" and e["source"] == "10.99.0.9" and e["by"] == "admin"'
"$VMGATE" firewall ban 10.99.0.9 --for 1h -c "$T/vmgate.conf" >"$T/ban.txt" 2>&1 ||
    { cat "$T/ban.txt"; fail "vmgate firewall ban failed"; }
grep -q "note:" "$T/ban.txt" && { cat "$T/ban.txt"; fail "the ban did not reach vmgate"; }
wait_for 5 audited "$BAN" || { cat "$AUDIT"; fail "no ban event by admin in the audit"; }
metrics 'val("vmgate_bans") == 1' || fail "vmgate_bans is not 1 after a ban by hand"
sleep 0.5
[ "$(acount 'e["event"] == "ban"')" = 1 ] || { cat "$AUDIT"; fail "expected exactly one ban event (processes = 2)"; }
"$VMGATE" firewall unban 10.99.0.9 -c "$T/vmgate.conf" >"$T/unban.txt" 2>&1 ||
    { cat "$T/unban.txt"; fail "vmgate firewall unban failed"; }
wait_for 5 audited "$UNBAN" || { cat "$AUDIT"; fail "no unban event by admin in the audit"; }
metrics 'val("vmgate_bans") == 0' || fail "vmgate_bans is not 0 after the unban"
sleep 0.5
[ "$(acount 'e["event"] == "unban"')" = 1 ] || { cat "$AUDIT"; fail "expected exactly one unban event"; }
say "ban / unban by hand: audited once with by=admin, counted in vmgate_bans"

# ---- a process that does not answer: net1's counts, and the gauge says so
kill -STOP "${NET[2]}"
metrics 'val("vmgate_network_processes_answered") == 1;val("vmgate_sessions", vm="a", via="tls") == 1' ||
    { kill -CONT "${NET[2]}"; fail "/metrics with net2 stopped is not net1's alone"; }
kill -CONT "${NET[2]}"
metrics "$SUM" || fail "/metrics is not the sum again after net2 continued"
vmgate_alive || fail "vmgate died"
stop_vmgate
