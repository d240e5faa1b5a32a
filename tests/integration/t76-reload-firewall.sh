#!/bin/bash
# t76-reload-firewall: a config reload re-applies the firewall table.
#
# `vmgate run` as root with user = nobody inside a network namespace (the
# lib's netns_pair: 10.99.0.1 / fd00:99::1 inside, clients at 10.99.0.2 /
# fd00:99::2), [firewall] protect = 5900-6100.  After the privilege drop only
# the auth helper keeps root, so it is the one that applies the new table.
#   - before the reload port 5904 (inside the protected range) is refused
#     from outside; three wrong passwords ban fd00:99::/64;
#   - `vmgate reload` adding vm b with vnc_port = 5904: 5904 now greets with
#     RFB from outside (the table lets vmgate's new port through: without the
#     re-apply the table rejects it); `vmgate firewall status` says the
#     table matches the new config; the ban on fd00:99::/64 is still there;
#   - a bad allow CIDR: exit 1 naming FILE:LINE of allow; the table still
#     matches the previous config;
#   - removing [firewall]: exit 1, "[firewall] cannot change on reload".
. "$(dirname "$0")/lib.sh"
need_root "t76-reload-firewall"
need_vmgate
need_tools t76-reload-firewall ip nft
id nobody >/dev/null 2>&1 || skip "no user 'nobody' on this machine"

IN=vmgt-rin-$$
OUT=vmgt-rout-$$
netns_pair "$IN" "$OUT"
in_ns()  { ip netns exec "$IN" "$@"; }
out_ns() { ip netns exec "$OUT" "$@"; }
fw()     { in_ns "$VMGATE" firewall "$@"; }
probe() { PROBE_TIMEOUT=2 PROBE_GREETING="RFB " netns_probe "$OUT" "$1" "$2"; }
reload_cmd() { RL_RC=0; RL_OUT=$("$VMGATE" reload --socket "$T/control" 2>&1) || RL_RC=$?; }

make_certs
make_passwd alice 'alice-good-pw'
chmod 600 "$T/passwd"
FWSEC='
[firewall]
protect = 5900-6100
ban_after = 3
ban_window = 1m
ban_time = 1h'
conf=$T/vmgate.conf
write_config "$conf" address=:: user=nobody -- vm a vnc="unix:$T/no-qemu.sock" vnc_port=5902 users=alice
echo "$FWSEC" >>"$conf"

VMGATE_LOG=$T/vmgate.log
add_log "$VMGATE_LOG"
ip netns exec "$IN" "$VMGATE" run -c "$conf" >"$VMGATE_LOG" 2>&1 </dev/null &
VMGATE_PID=$!
track "$VMGATE_PID"
wait_for 15 log_has 'listening for vm a' || fail "vmgate did not start listening"
expect_log 'firewall: table inet vmgate applied'
expect_log "network-facing process runs as nobody"
[ "$(probe 10.99.0.1 5902)" = OPEN ] || fail "vm a's port 5902 not reachable from outside"
r=$(probe 10.99.0.1 5904)
[ "$r" = REFUSED ] || fail "5904 before the reload: $r, expected REFUSED"

for i in 1 2 3; do
    out_ns "$PY" "$TOOLS/rawrfb.py" login fd00:99::1 5902 "$CA" alice wrong --timeout 10 >"$T/login.out" 2>&1 || true
    grep -qx 'result=failed' "$T/login.out" || { cat "$T/login.out"; fail "wrong password not refused"; }
done
wait_for 5 sh -c "ip netns exec $IN $VMGATE firewall status -c $conf 2>/dev/null | grep -Eq '^  fd00:99::/64 +[0-9hms]+ left'" ||
    fail "fd00:99::/64 not banned after 3 failed logins"

# ---- add vm b on 5904 ----
cp "$conf" "$T/old.conf"
write_config "$conf" address=:: user=nobody -- vm a vnc="unix:$T/no-qemu.sock" vnc_port=5902 users=alice \
    vm b vnc="unix:$T/no-qemu-b.sock" vnc_port=5904 users=alice
echo "$FWSEC" >>"$conf"
reload_cmd
[ "$RL_RC" -eq 0 ] || fail "vmgate reload: exit $RL_RC: $RL_OUT"
r=$(probe 10.99.0.1 5904)
[ "$r" = OPEN ] || fail "vm b's new port 5904 from outside after the reload: $r (the table was not re-applied?)"
wait_for 5 log_has 'reload: firewall table inet vmgate re-applied' || fail "no 're-applied' log line"
fw status -c "$conf" >"$T/status.out" 2>&1 || { cat "$T/status.out"; fail "table not in sync with the new config"; }
grep -Eq '^  fd00:99::/64 +[0-9hms]+ left' "$T/status.out" || { cat "$T/status.out"; fail "the ban was lost by the reload"; }
say "reload re-applied the table: 5904 open, the ban kept"

# ---- a bad allow: refused, table as before ----
cp "$conf" "$T/good.conf"
sed -i 's/^protect = 5900-6100$/protect = 5900-6100\nallow = 10.99.0.300/' "$conf"
line=$(grep -n '^allow = 10.99.0.300' "$conf" | cut -d: -f1)
reload_cmd
[ "$RL_RC" -eq 1 ] || fail "bad allow: exit $RL_RC ($RL_OUT)"
grep -q "$conf:$line:" <<<"$RL_OUT" || fail "bad allow: the error does not name $conf:$line: $RL_OUT"
fw status -c "$T/good.conf" >"$T/status.out" 2>&1 || { cat "$T/status.out"; fail "a refused reload changed the table"; }

# ---- [firewall] removed: needs a restart ----
cp "$T/good.conf" "$conf"
sed -i '/^\[firewall\]/,$d' "$conf"
reload_cmd
[ "$RL_RC" -eq 1 ] || fail "[firewall] removed: exit $RL_RC ($RL_OUT)"
grep -q "\[firewall\] cannot change on reload" <<<"$RL_OUT" || fail "[firewall] removed: $RL_OUT"
[ "$(probe 10.99.0.1 5904)" = OPEN ] || fail "5904 closed after refused reloads"
say "bad reloads refused: $RL_OUT"

kill -TERM "$VMGATE_PID"
wait_for 5 _not_alive "$VMGATE_PID" || fail "vmgate still running 5 s after SIGTERM"
fw remove >/dev/null || true
echo PASS
