#!/bin/bash
# t22-flood-ban: connections that only hold unauthenticated slots are counted
# per source the way the bans count, and repeated ones get the source banned.
#
# `vmgate run` inside a network namespace (vmgt-fin-PID, 10.99.0.1 and
# fd00:99::1) with a [firewall] section (ban_after = 3), first_byte_timeout =
# 1s, login_timeout = 3s, max_unauth_per_source = 4; clients in a second
# namespace (10.99.0.2, fd00:99::2 and fd00:99::10..14, one /64).
#   - 5 connections from 5 addresses of one IPv6 /64 that send their version
#     and then nothing: 4 held, the 5th refused ("per-source limit 4": the
#     /64 is one source, as for the bans);
#   - those 4 time out at login_timeout; the network process reports each
#     to the auth helper (AUTHP_REQ_IDLE), which bans fd00:99::/64 after 3
#     ("after 3 failed logins or idle connections"); the kernel then drops
#     it, IPv4 still open;
#   - 3 connections from 10.99.0.2 that send nothing are closed by
#     first_byte_timeout and get 10.99.0.2 banned the same way.
. "$(dirname "$0")/lib.sh"
need_root "t22-flood-ban"
need_vmgate
need_tools t22-flood-ban ip nft

IN=vmgt-fin-$$
OUT=vmgt-fout-$$
netns_pair "$IN" "$OUT"
for i in 10 11 12 13 14; do
    ip -n "$OUT" addr add "fd00:99::$i/64" dev "$NETNS_VETH_OUT" nodad
done

in_ns()  { ip netns exec "$IN" "$@"; }
out_ns() { ip netns exec "$OUT" "$@"; }
fw()     { in_ns "$VMGATE" firewall "$@"; }
probe() { PROBE_TIMEOUT=2 PROBE_GREETING="RFB " netns_probe "$OUT" "$1" "$2"; }
banned() {   # KEY-REGEX: listed as banned by `vmgate firewall status`
    fw status -c "$T/vmgate.conf" 2>/dev/null | grep -Eq "^  $1 +[0-9hms]+ left"
}

make_certs
make_passwd alice 'alice-good-pw'
PORT=5902
write_config "$T/vmgate.conf" address=:: login_timeout=3s first_byte_timeout=1s \
    max_unauth=64 max_unauth_per_source=4 -- \
    vm a vnc="unix:$T/no-qemu.sock" vnc_port="$PORT" users=alice
cat >>"$T/vmgate.conf" <<EOF

[firewall]
protect = 5900-6100
ban_after = 3
ban_window = 1m
ban_time = 1h
EOF

VMGATE_LOG=$T/vmgate.log
add_log "$VMGATE_LOG"
ip netns exec "$IN" "$VMGATE" run -c "$T/vmgate.conf" >"$VMGATE_LOG" 2>&1 </dev/null &
VMGATE_PID=$!
track "$VMGATE_PID"
wait_for 15 log_has 'listening for vm a' || fail "vmgate did not start listening"
expect_log 'firewall: table inet vmgate applied'
[ "$(probe 10.99.0.1 "$PORT")" = OPEN ] || fail "vmgate not reachable over IPv4"
[ "$(probe fd00:99::1 "$PORT")" = OPEN ] || fail "vmgate not reachable over IPv6"
# (a probe closes as soon as it has the greeting: that is not counted)

# ---- one IPv6 /64 is one source: 4 held of 5 ----
out_ns "$PY" "$TOOLS/rawrfb.py" idle fd00:99::1 "$PORT" 5 --speak \
    --source fd00:99::10,fd00:99::11,fd00:99::12,fd00:99::13,fd00:99::14 --hold 10 \
    >"$T/idle.v6" 2>&1 || true
add_log "$T/idle.v6"
grep -qx 'held=4' "$T/idle.v6" && grep -qx 'refused=1' "$T/idle.v6" ||
    { cat "$T/idle.v6"; fail "5 addresses of one /64: expected 4 held, 1 refused"; }
expect_log 'refused connection from fd00:99::14: too many unauthenticated connections \(per-source limit 4\)'
say "5 addresses of one /64 are one source: 4 held, 1 refused"

# ---- ... and their login timeouts get the /64 banned ----
wait_for 10 banned 'fd00:99::/64' ||
    { fw status -c "$T/vmgate.conf" || true; fail "fd00:99::/64 not banned after its idle connections"; }
expect_log 'firewall: banned fd00:99::/64 for 3600s after 3 failed logins or idle connections within 60s'
n=$(grep -c 'from=fd00:99::1[0-4]: login timeout (3s) in state security-type' "$VMGATE_LOG" || true)
[ "$n" -eq 4 ] || fail "expected 4 login timeouts from fd00:99::/64, got $n"
r=$(probe fd00:99::1 "$PORT")
[ "$r" = TIMEOUT ] || fail "banned fd00:99::/64 got $r, expected a timeout (dropped)"
[ "$(probe 10.99.0.1 "$PORT")" = OPEN ] || fail "IPv4 was blocked too"
say "fd00:99::/64 banned after idle connections held to login_timeout: $(grep 'banned fd00' "$VMGATE_LOG" | sed 's/^.*firewall:/firewall:/')"

# ---- silent connections (first_byte_timeout) from one IPv4 address ----
for i in 1 2 3; do
    out_ns "$PY" "$TOOLS/rawrfb.py" --timeout 10 silent 10.99.0.1 "$PORT" nothing >"$T/silent.$i" 2>&1 || true
    add_log "$T/silent.$i"
    grep -qx 'closed=yes' "$T/silent.$i" || { cat "$T/silent.$i"; fail "silent connection $i was not closed"; }
done
wait_for 10 banned '10\.99\.0\.2' ||
    { fw status -c "$T/vmgate.conf" || true; fail "10.99.0.2 not banned after 3 silent connections"; }
expect_log 'firewall: banned 10\.99\.0\.2 for 3600s after 3 failed logins or idle connections within 60s'
r=$(probe 10.99.0.1 "$PORT")
[ "$r" = TIMEOUT ] || fail "banned 10.99.0.2 got $r, expected a timeout (dropped)"
say "10.99.0.2 banned after 3 connections closed by first_byte_timeout"

kill -TERM "$VMGATE_PID"
wait_for 5 _not_alive "$VMGATE_PID" || fail "vmgate still running 5 s after SIGTERM"
in_ns "$VMGATE" firewall remove >/dev/null 2>&1 || true
say "t22-flood-ban: all checks passed"
