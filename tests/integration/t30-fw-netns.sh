#!/bin/bash
# tests/integration/t30-fw-netns.sh — vmgate's nftables policy, proven with traffic.
#
# Two network namespaces joined by a veth pair; all addresses exist only
# inside them and all traffic stays on that veth (or on the inside
# namespace's loopback):
#   inside  (vmgt-in-PID):  10.99.0.1/24, fd00:99::1/64; `vmgate firewall apply` runs here,
#                           with listeners on 5902 (a raw QEMU port), 5910 (a vmgate port
#                           inside the range), 6200 (a vmgate port outside it), 6150 (not ours)
#   outside (vmgt-out-PID): 10.99.0.2 + fd00:99::2 (ordinary clients),
#                           10.99.0.3 + fd00:99::3 (in [firewall] allow)
# Each outcome is checked twice: what the client sees (OPEN / REFUSED =
# reset / TIMEOUT = dropped) and vmgate's own counters, since a closed port
# also answers with a reset.  The namespaces are always deleted (trap).
#
# Needs root.  VMGATE=path overrides the binary (default $BUILD/vmgate).
set -u

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: t30-fw-netns needs root (network namespaces and nftables)"
    exit 77
fi
for t in ip nft python3 timeout; do
    if ! command -v "$t" >/dev/null 2>&1; then
        echo "SKIP: t30-fw-netns needs $t"
        exit 77
    fi
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-build}
case "$B" in /*) ;; *) B=$ROOT/$B ;; esac
VMGATE=${VMGATE:-$B/vmgate}
case "$VMGATE" in /*) ;; *) VMGATE=$PWD/$VMGATE ;; esac
if [ ! -x "$VMGATE" ]; then
    echo "FAIL: $VMGATE is not built (run make, or set VMGATE=path)"
    exit 1
fi

IN=vmgt-in-$$
OUT=vmgt-out-$$
TMP=$(mktemp -d /tmp/vmgate-t30.XXXXXX)
LISTENER_PID=

cleanup() {
    [ -n "$LISTENER_PID" ] && kill "$LISTENER_PID" 2>/dev/null
    ip netns del "$IN" 2>/dev/null
    ip netns del "$OUT" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

PASS=0
FAIL=0
ok()   { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad()  { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
# check DESCRIPTION EXPECTED ACTUAL
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected '$2', got '$3'"; fi; }

in_ns()  { timeout 60 ip netns exec "$IN" "$@"; }
out_ns() { timeout 60 ip netns exec "$OUT" "$@"; }
fw()     { in_ns "$VMGATE" firewall "$@"; }

# ---- helpers written to TMP ----
cat >"$TMP/listen.py" <<'EOF'
# Dual-stack listeners answering "hello PORT"; stops by itself after 300 s.
import selectors, socket, sys, time
ready, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
sel = selectors.DefaultSelector()
for p in ports:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", p))
    s.listen(64)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, p)
open(ready, "w").close()
end = time.time() + 300
while time.time() < end:
    for key, _ in sel.select(timeout=1):
        try:
            c, _ = key.fileobj.accept()
        except OSError:
            continue
        try:
            c.sendall(b"hello %d\n" % key.data)
        except OSError:
            pass
        c.close()
EOF
cat >"$TMP/probe.py" <<'EOF'
# probe.py HOST PORT [SOURCE]: OPEN (got the listener's hello), REFUSED (reset), TIMEOUT (dropped)
import os, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
src = sys.argv[3] if len(sys.argv) > 3 else None
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(float(os.environ.get("PROBE_TIMEOUT", "1.5")))
try:
    if src:
        s.bind((src, 0))
    s.connect((host, port))
    print("OPEN" if s.recv(64).startswith(b"hello") else "OPEN-BUT-NO-HELLO")
except ConnectionRefusedError:
    print("REFUSED")
except socket.timeout:
    print("TIMEOUT")
except OSError as e:
    print("ERROR-%s" % e.errno)
EOF
cat >"$TMP/counter.py" <<'EOF'
# counter.py NAME < `nft -j list counters`: packets of vmgate's counter NAME
import json, sys
for o in json.load(sys.stdin)["nftables"]:
    c = o.get("counter")
    if c and c["table"] == "vmgate" and c["name"] == sys.argv[1]:
        print(c["packets"])
EOF

# probe FROM_NS HOST PORT [SOURCE]
probe() { local ns=$1; shift; timeout 20 ip netns exec "$ns" python3 "$TMP/probe.py" "$@"; }
# counter NAME: the value `vmgate firewall status` prints
counter() { fw status -c "$CONF" 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'; }
# nft_counter NAME: the same, straight from nft
nft_counter() { in_ns nft -j list counters | python3 "$TMP/counter.py" "$1"; }

# ---- the namespaces ----
if ! ip netns add "$IN" 2>"$TMP/err"; then
    echo "SKIP: cannot create network namespaces here: $(cat "$TMP/err")"
    exit 77
fi
ip netns add "$OUT"
ip -n "$IN" link add "vgi$$" type veth peer name "vgo$$" netns "$OUT"
ip -n "$IN" link set lo up
ip -n "$OUT" link set lo up
ip -n "$IN" addr add 10.99.0.1/24 dev "vgi$$"
ip -n "$IN" addr add fd00:99::1/64 dev "vgi$$" nodad
ip -n "$OUT" addr add 10.99.0.2/24 dev "vgo$$"
ip -n "$OUT" addr add 10.99.0.3/24 dev "vgo$$"
ip -n "$OUT" addr add fd00:99::2/64 dev "vgo$$" nodad
ip -n "$OUT" addr add fd00:99::3/64 dev "vgo$$" nodad
ip -n "$IN" link set "vgi$$" up
ip -n "$OUT" link set "vgo$$" up

ip netns exec "$IN" python3 "$TMP/listen.py" "$TMP/ready" 5902 5910 6200 6150 &
LISTENER_PID=$!
for _ in $(seq 50); do [ -e "$TMP/ready" ] && break; sleep 0.1; done
[ -e "$TMP/ready" ] || { bad "listener did not start"; exit 1; }

CONF=$TMP/vmgate.conf
cat >"$CONF" <<EOF
[gateway]
address = ::
auth = file
passwd_file = $TMP/passwd

[firewall]
protect = 5900-6100
allow = 10.99.0.3 fd00:99::3

[vm dev0]
vnc = 127.0.0.1:5999
vnc_port = 5910
spice = unix:$TMP/dev0.spice
spice_port = 6200
users = alice
EOF

echo "# t30-fw-netns: $VMGATE, namespaces $IN / $OUT"

# ---- before: everything reachable ----
check "before apply: raw 5902 reachable from outside" OPEN "$(probe "$OUT" 10.99.0.1 5902 10.99.0.2)"

# ---- apply ----
out=$(fw apply -c "$CONF" 2>&1); rc=$?
check "apply exits 0" 0 "$rc"
case "$out" in *"installed table inet vmgate"*) ok "apply installs the table" ;; *) bad "apply output: $out" ;; esac
out=$(fw apply -c "$CONF" 2>&1)
case "$out" in *"nothing to do"*) ok "a second apply is a no-op" ;; *) bad "second apply: $out" ;; esac
out=$(fw status -c "$CONF" 2>&1); rc=$?
check "status exits 0 when in sync" 0 "$rc"
case "$out" in *"in sync"*) ok "status says in sync" ;; *) bad "status: $out" ;; esac

# ---- raw range closed from outside, IPv4 and IPv6 ----
r0=$(counter raw_rejected)
check "raw 5902 from outside (IPv4) is refused" REFUSED "$(probe "$OUT" 10.99.0.1 5902 10.99.0.2)"
r1=$(counter raw_rejected)
[ "$r1" -gt "$r0" ] && ok "raw_rejected counted the IPv4 reject ($r0 -> $r1)" || bad "raw_rejected did not move on IPv4 ($r0 -> $r1)"
check "raw 5902 from outside (IPv6) is refused" REFUSED "$(probe "$OUT" fd00:99::1 5902 fd00:99::2)"
r2=$(counter raw_rejected)
[ "$r2" -gt "$r1" ] && ok "raw_rejected counted the IPv6 reject ($r1 -> $r2)" || bad "raw_rejected did not move on IPv6 ($r1 -> $r2)"
check "nft's own counter agrees with status" "$r2" "$(nft_counter raw_rejected)"

# ---- vmgate's ports open, inside and outside the range ----
g0=$(counter gw_new)
check "vmgate port 5910 (inside the range) open over IPv4" OPEN "$(probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
check "vmgate port 5910 open over IPv6" OPEN "$(probe "$OUT" fd00:99::1 5910 fd00:99::2)"
check "vmgate port 6200 (outside the range) open" OPEN "$(probe "$OUT" 10.99.0.1 6200 10.99.0.2)"
g1=$(counter gw_new)
check "gw_new counted 3 new connections" 3 "$((g1 - g0))"
check "a port that is not ours (6150) is untouched" OPEN "$(probe "$OUT" 10.99.0.1 6150 10.99.0.2)"
check "raw_rejected unchanged by all that" "$r2" "$(counter raw_rejected)"

# ---- the allowlist ----
a0=$(counter raw_allowed)
check "allowed 10.99.0.3 reaches raw 5902" OPEN "$(probe "$OUT" 10.99.0.1 5902 10.99.0.3)"
check "allowed fd00:99::3 reaches raw 5902" OPEN "$(probe "$OUT" fd00:99::1 5902 fd00:99::3)"
check "10.99.0.2 (not allowed) still refused" REFUSED "$(probe "$OUT" 10.99.0.1 5902 10.99.0.2)"
a1=$(counter raw_allowed)
check "raw_allowed counted 2 connections" 2 "$((a1 - a0))"

# ---- loopback inside ----
l0=$(counter lo_new)
r0=$(counter raw_rejected)
check "loopback 127.0.0.1:5902 inside" OPEN "$(probe "$IN" 127.0.0.1 5902)"
check "loopback [::1]:5902 inside" OPEN "$(probe "$IN" ::1 5902)"
check "the host's own address 10.99.0.1:5902 from inside (via lo)" OPEN "$(probe "$IN" 10.99.0.1 5902)"
l1=$(counter lo_new)
check "lo_new counted 3 loopback connections" 3 "$((l1 - l0))"
check "raw_rejected unchanged by loopback" "$r0" "$(counter raw_rejected)"

# ---- bans: dropped (timeout), not reset ----
out=$(fw ban 10.99.0.2 --for 1h -c "$CONF" 2>&1); rc=$?
check "ban 10.99.0.2 exits 0" 0 "$rc"
b0=$(counter ban_dropped)
check "banned 10.99.0.2 -> vmgate port times out" TIMEOUT "$(PROBE_TIMEOUT=2 probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
b1=$(counter ban_dropped)
[ "$b1" -gt "$b0" ] && ok "ban_dropped counted the dropped SYNs ($b0 -> $b1)" || bad "ban_dropped did not move ($b0 -> $b1)"
check "10.99.0.3 (not banned) still gets in" OPEN "$(probe "$OUT" 10.99.0.1 5910 10.99.0.3)"
out=$(fw status -c "$CONF" 2>&1)
echo "$out" | grep -Eq '^  10\.99\.0\.2 +(59m[0-9]+s|1h) left \(of 1h\)' && ok "status lists the ban with its time left" || bad "status bans: $out"
out=$(fw ban fd00:99::2/64 --for 10m -c "$CONF" 2>&1); rc=$?
case "$out" in *"is in the allowlist (fd00:99::3)"*) check "banning a /64 that holds an allowed source is refused" 1 "$rc" ;;
    *) bad "ban of a /64 with an allowed source: rc $rc: $out" ;; esac
out=$(fw ban fd00:99::2 --for 10m -c "$CONF" 2>&1); rc=$?
check "ban fd00:99::2 exits 0" 0 "$rc"
check "banned IPv6 source -> vmgate port times out" TIMEOUT "$(probe "$OUT" fd00:99::1 5910 fd00:99::2)"
check "fd00:99::3 (not banned) still gets in over IPv6" OPEN "$(probe "$OUT" fd00:99::1 5910 fd00:99::3)"
out=$(fw unban 10.99.0.2 2>&1); rc=$?
check "unban 10.99.0.2 exits 0" 0 "$rc"
check "after unban 10.99.0.2 gets in again" OPEN "$(probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
out=$(fw unban fd00:99::2 2>&1)
check "after unban fd00:99::2 gets in again" OPEN "$(probe "$OUT" fd00:99::1 5910 fd00:99::2)"
out=$(fw unban 10.99.0.2 2>&1); rc=$?
case "$out" in *"was not banned"*) check "unban of an address not banned exits 0" 0 "$rc" ;; *) bad "unban again: $out" ;; esac

# ---- a short ban expires by itself ----
t0=$(date +%s.%N)
out=$(fw ban 10.99.0.2 --for 2s 2>&1); rc=$?
check "ban --for 2s exits 0" 0 "$rc"
check "during the 2s ban: timeout" TIMEOUT "$(PROBE_TIMEOUT=1 probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
sleep "$(python3 -c "import time; print(max(0.1, $t0 + 2.5 - time.time()))")"
check "after 2s the ban has expired: open" OPEN "$(probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
fw status -c "$CONF" 2>/dev/null | grep -q '^bans: 0$' && ok "status shows no bans after expiry" || bad "bans left after expiry"

# ---- coexistence: another table's drop wins over our accept; our reject still wins ----
in_ns nft -f - <<'EOF'
table inet hostfw {
    chain input {
        type filter hook input priority 0; policy drop;
        ct state established,related accept
        iif "lo" accept
        tcp dport 5902 accept
    }
}
EOF
check "with a foreign policy-drop table, vmgate's port times out" TIMEOUT "$(probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
check "and the raw port is still refused by vmgate (its accept of 5902 does not open it)" REFUSED "$(probe "$OUT" 10.99.0.1 5902 10.99.0.2)"
out=$(fw status -c "$CONF" 2>&1)
case "$out" in *"table inet hostfw, chain input (hook input, priority 0, policy drop)"*"must be opened there too"*) ok "status warns about the foreign drop policy" ;; *) bad "status warning: $out" ;; esac
in_ns nft delete table inet hostfw
check "foreign table gone: vmgate's port open again" OPEN "$(probe "$OUT" 10.99.0.1 5910 10.99.0.2)"

# ---- remove: the range is open again, no trace left ----
out=$(fw remove 2>&1); rc=$?
check "remove exits 0" 0 "$rc"
check "after remove the raw port answers again" OPEN "$(probe "$OUT" 10.99.0.1 5902 10.99.0.2)"
check "after remove nft holds nothing" "" "$(in_ns nft list ruleset)"

echo "t30-fw-netns: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
