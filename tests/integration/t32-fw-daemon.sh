#!/bin/bash
# t32-fw-daemon: the running daemon keeps the firewall policy true.
#
# `vmgate run` inside a network namespace (vmgt-din-PID, 10.99.0.1 and
# fd00:99::1, dual-stack listener) with a [firewall] section; clients in a
# second namespace (vmgt-dout-PID, 10.99.0.2 and fd00:99::2) joined by a
# veth pair.  All traffic stays on that veth.
#   - at start the daemon installs table inet vmgate;
#   - wrong passwords through a raw VeNCrypt client (tests/tools/rawrfb.py)
#     get the source banned in the kernel after ban_after failures: IPv4 per
#     address, IPv6 per /64; the next connection is dropped (timeout), while
#     the other family still reaches vmgate; `vmgate firewall unban` lets it
#     back;
#   - `nft flush ruleset` (what Debian's nftables.service does on reload)
#     is noticed and the table is put back, with a log line;
#   - after the daemon stops the table stays (fail closed).
. "$(dirname "$0")/lib.sh"
need_root "t32-fw-daemon"
need_vmgate
need_tools t32-fw-daemon ip nft

IN=vmgt-din-$$
OUT=vmgt-dout-$$
netns_pair "$IN" "$OUT"

in_ns()  { ip netns exec "$IN" "$@"; }
out_ns() { ip netns exec "$OUT" "$@"; }
fw()     { in_ns "$VMGATE" firewall "$@"; }
# table_present: 0 table inet vmgate is there, 1 it is not, 2 nft could not tell
table_present() {
    local t
    t=$(in_ns nft list tables) || return 2
    grep -qx 'table inet vmgate' <<<"$t"
}
table_absent() { local rc=0; table_present || rc=$?; [ "$rc" -eq 1 ]; }
# probe HOST PORT from outside: OPEN (vmgate sent its RFB version), REFUSED, TIMEOUT
probe() { PROBE_TIMEOUT=2 PROBE_GREETING="RFB " netns_probe "$OUT" "$1" "$2"; }
# bad_login HOST: one wrong password through a raw VeNCrypt client; must be refused
bad_login() {
    out_ns "$PY" "$TOOLS/rawrfb.py" login "$1" "$PORT" "$CA" alice 'wrong-pw' --timeout 10 >"$T/login.out" 2>&1 || true
    grep -qx 'result=failed' "$T/login.out" || { cat "$T/login.out"; fail "login with a wrong password from $1 was not refused"; }
}

make_certs
make_passwd alice 'alice-good-pw'
PORT=5902   # inside the protected range, where QEMU used to listen
write_config "$T/vmgate.conf" address=:: -- \
    vm a vnc="unix:$T/no-qemu.sock" vnc_port="$PORT" users=alice
cat >>"$T/vmgate.conf" <<EOF

[firewall]
protect = 5900-6100
allow = 10.99.0.3
ban_after = 3
ban_window = 1m
ban_time = 1h
EOF

# start the daemon inside the namespace (lib.sh's start_vmgate runs it here)
VMGATE_LOG=$T/vmgate.log
add_log "$VMGATE_LOG"
ip netns exec "$IN" "$VMGATE" run -c "$T/vmgate.conf" >"$VMGATE_LOG" 2>&1 </dev/null &
VMGATE_PID=$!
track "$VMGATE_PID"
wait_for 15 log_has 'listening for vm a' || fail "vmgate did not start listening"
say "vmgate is running in $IN"

table_present || fail "the daemon did not install table inet vmgate at start"
expect_log 'firewall: table inet vmgate applied'
fw status -c "$T/vmgate.conf" >"$T/status.out" 2>&1 || { cat "$T/status.out"; fail "status not in sync after start"; }

[ "$(probe 10.99.0.1 "$PORT")" = OPEN ] || fail "vmgate's port 5902 not reachable from outside over IPv4"
[ "$(probe fd00:99::1 "$PORT")" = OPEN ] || fail "vmgate's port 5902 not reachable from outside over IPv6"

# ---- IPv4: three wrong passwords, then the kernel drops the source ----
for i in 1 2 3; do bad_login 10.99.0.1; done
wait_for 5 sh -c "ip netns exec $IN $VMGATE firewall status -c $T/vmgate.conf 2>/dev/null | grep -Eq '^  10\.99\.0\.2 +[0-9hms]+ left'" ||
    { fw status -c "$T/vmgate.conf" || true; fail "10.99.0.2 not banned after 3 failed logins"; }
expect_log 'firewall: banned 10\.99\.0\.2 for 3600s after 3 failed logins'
r=$(probe 10.99.0.1 "$PORT")
[ "$r" = TIMEOUT ] || fail "banned 10.99.0.2 got $r, expected a timeout (dropped)"
bd=$(fw status -c "$T/vmgate.conf" 2>/dev/null | awk '$1 == "ban_dropped" { print $2 }')
[ "${bd:-0}" -ge 1 ] || fail "ban_dropped did not count the dropped packets"
[ "$(probe fd00:99::1 "$PORT")" = OPEN ] || fail "IPv6 from the same client was blocked too"
say "IPv4 source banned by the daemon: dropped (ban_dropped=$bd), IPv6 still open"

fw unban 10.99.0.2 >/dev/null || fail "vmgate firewall unban failed"
[ "$(probe 10.99.0.1 "$PORT")" = OPEN ] || fail "10.99.0.2 still blocked after unban"

# ---- IPv6: banned per /64 ----
for i in 1 2 3; do bad_login fd00:99::1; done
wait_for 5 sh -c "ip netns exec $IN $VMGATE firewall status -c $T/vmgate.conf 2>/dev/null | grep -Eq '^  fd00:99::/64 +[0-9hms]+ left'" ||
    { fw status -c "$T/vmgate.conf" || true; fail "fd00:99::/64 not banned after 3 failed logins"; }
r=$(probe fd00:99::1 "$PORT")
[ "$r" = TIMEOUT ] || fail "banned fd00:99::2 got $r, expected a timeout"
fw unban fd00:99::/64 >/dev/null || fail "unban of the /64 failed"
[ "$(probe fd00:99::1 "$PORT")" = OPEN ] || fail "fd00:99::2 still blocked after unban"
say "IPv6 source banned per /64, and let back by unban"

# ---- someone flushes the ruleset: the daemon puts the table back ----
in_ns nft flush ruleset
wait_for 10 table_present || fail "the daemon did not restore table inet vmgate within 10 s of a flush"
wait_for 5 log_has 'table inet vmgate had been removed; put it back' || fail "no log line about restoring the table"
fw status -c "$T/vmgate.conf" >"$T/status.out" 2>&1 || { cat "$T/status.out"; fail "restored table not in sync"; }
[ "$(probe 10.99.0.1 5903)" = REFUSED ] || fail "raw port 5903 not refused after the restore"
rr=$(fw status -c "$T/vmgate.conf" 2>/dev/null | awk '$1 == "raw_rejected" { print $2 }')
[ "${rr:-0}" -ge 1 ] || fail "raw_rejected did not count the reject after the restore (a closed port resets too)"
say "flushed table restored by the daemon"

# ---- the daemon stops: the policy stays (fail closed) ----
kill -TERM "$VMGATE_PID"
wait_for 5 _not_alive "$VMGATE_PID" || fail "vmgate still running 5 s after SIGTERM"
table_present || fail "table inet vmgate vanished with the daemon"
fw remove >/dev/null
table_absent || fail "remove left the table"
say "t32-fw-daemon: all checks passed"
