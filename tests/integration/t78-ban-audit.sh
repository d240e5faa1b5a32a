#!/bin/bash
# t78-ban-audit: the auth helper's bans reach the audit trail.
#
# vmgate with processes = 2, [firewall] ban_after = 3, ban_time = 3s and an
# audit file, in a network namespace (vmgate on 10.78.0.1, the viewer at
# 10.78.0.7 on its lo: not loopback, so it can be banned).  Three failed
# VeNCrypt logins from 10.78.0.7 get it banned by the helper (its log line,
# the kernel set); the audit then has exactly one `ban` event (two network
# processes hear of it, only the first writes it) with source 10.78.0.7,
# conn/vm/user/via null and `until` an RFC 3339 time about ban_time after
# the event; when the ban's time is over, exactly one `unban` for 10.78.0.7.
. "$(dirname "$0")/lib.sh"
need_root "t78-ban-audit"
need_vmgate
need_tools t78-ban-audit ip nft

NS=vmgt-ba-$$
netns_add "$NS"
for a in 1 7; do ip -n "$NS" addr add "10.78.0.$a/32" dev lo; done
REAL_VMGATE=$VMGATE
VMGATE=$T/vmgate-ns
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS" "$REAL_VMGATE" >"$VMGATE"
chmod 755 "$VMGATE"

make_certs
make_passwd alice 'alice-good-pw'
AUDIT=$T/audit.jsonl
write_config "$T/vmgate.conf" address=10.78.0.1 fail_delay=0 audit="$AUDIT" processes=2 -- \
    vm a vnc="unix:$T/no-qemu.sock" vnc_port=5902 users=alice
cat >>"$T/vmgate.conf" <<EOF

[firewall]
protect = 5900-6100
ban_after = 3
ban_window = 1m
ban_time = 3s
EOF
start_vmgate "$T/vmgate.conf" 1

count() {   # PYEXPR: audit lines (parsed as e) for which PYEXPR is true
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
has() { [ "$(count "$1")" -ge 1 ]; }

for i in 1 2 3; do
    ip netns exec "$NS" "$PY" "$TOOLS/rawrfb.py" --source 10.78.0.7 login 10.78.0.1 5902 "$CA" \
        alice wrong >"$T/bad$i.txt" 2>&1 || true
    grep -qx 'result=failed' "$T/bad$i.txt" || { cat "$T/bad$i.txt"; fail "login $i did not fail"; }
done
expect_log 'firewall: banned 10.78.0.7 for 3s after 3 failed logins'
t_ban=$(date +%s)
wait_for 10 has 'e["event"] == "ban"' || { cat "$AUDIT"; fail "no ban event in the audit"; }
sleep 0.5
[ "$(count 'e["event"] == "ban"')" = 1 ] || { cat "$AUDIT"; fail "expected exactly one ban event (processes = 2)"; }
"$PY" - "$AUDIT" <<'PYEOF' || { cat "$AUDIT"; fail "the ban event is not as expected"; }
import datetime, json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
b = [e for e in ev if e["event"] == "ban"][0]
assert b["source"] == "10.78.0.7", b
assert b["conn"] is None and b["vm"] is None and b["user"] is None and b["via"] is None, b
fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
d = (datetime.datetime.strptime(b["until"], fmt) - datetime.datetime.strptime(b["time"], fmt))
assert 2.5 <= d.total_seconds() <= 3.5, d
PYEOF
say "audit: one ban event for 10.78.0.7, until = time + ban_time"
wait_for 10 has 'e["event"] == "unban" and e["source"] == "10.78.0.7"' ||
    { cat "$AUDIT"; fail "no unban event after ban_time"; }
sleep 0.5
[ "$(count 'e["event"] == "unban"')" = 1 ] || { cat "$AUDIT"; fail "expected exactly one unban event"; }
expect_log 'firewall: ban of 10.78.0.7 ended'
say "audit: one unban event for 10.78.0.7 $(( $(date +%s) - t_ban ))s after the ban"
vmgate_alive || fail "vmgate died"
true
