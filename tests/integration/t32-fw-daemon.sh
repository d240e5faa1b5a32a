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
for t in ip nft; do command -v "$t" >/dev/null 2>&1 || skip "t32-fw-daemon needs $t"; done

IN=vmgt-din-$$
OUT=vmgt-dout-$$
ip netns add "$IN" 2>"$T/netns.err" || skip "cannot create network namespaces here: $(cat "$T/netns.err")"
at_cleanup "ip netns del $IN"
ip netns add "$OUT"
at_cleanup "ip netns del $OUT"
ip -n "$IN" link add "vdi$$" type veth peer name "vdo$$" netns "$OUT"
ip -n "$IN" link set lo up
ip -n "$OUT" link set lo up
ip -n "$IN" addr add 10.99.0.1/24 dev "vdi$$"
ip -n "$IN" addr add fd00:99::1/64 dev "vdi$$" nodad
ip -n "$OUT" addr add 10.99.0.2/24 dev "vdo$$"
ip -n "$OUT" addr add fd00:99::2/64 dev "vdo$$" nodad
ip -n "$IN" link set "vdi$$" up
ip -n "$OUT" link set "vdo$$" up

in_ns()  { ip netns exec "$IN" "$@"; }
out_ns() { ip netns exec "$OUT" "$@"; }
fw()     { in_ns "$VMGATE" firewall "$@"; }
table_present() { in_ns nft list tables | grep -qx 'table inet vmgate'; }
table_absent() { ! table_present; }
# probe HOST PORT from outside: OPEN (vmgate sent its RFB version), REFUSED, TIMEOUT
probe() {
    out_ns "$PY" - "$1" "$2" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.settimeout(2)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("OPEN" if s.recv(12).startswith(b"RFB ") else "OPEN-NO-RFB")
except ConnectionRefusedError:
    print("REFUSED")
except socket.timeout:
    print("TIMEOUT")
except OSError as e:
    print("ERROR-%d" % e.errno)
EOF
}
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
