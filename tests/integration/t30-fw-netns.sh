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
. "$(dirname "$0")/lib.sh"
checklist
need_root "t30-fw-netns: network namespaces and nftables"
need_tools t30-fw-netns ip nft python3 timeout
need_vmgate

IN=vmgt-in-$$
OUT=vmgt-out-$$

in_ns() { timeout 60 ip netns exec "$IN" "$@"; }
fw()    { in_ns "$VMGATE" firewall "$@"; }

# ---- helpers written to $T ----
cat >"$T/listen.py" <<'EOF'
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
cat >"$T/counter.py" <<'EOF'
# counter.py NAME < `nft -j list counters`: packets of vmgate's counter NAME
import json, sys
for o in json.load(sys.stdin)["nftables"]:
    c = o.get("counter")
    if c and c["table"] == "vmgate" and c["name"] == sys.argv[1]:
        print(c["packets"])
EOF

# counter NAME: the value `vmgate firewall status` prints
counter() { fw status -c "$CONF" 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'; }
# nft_counter NAME: the same, straight from nft
nft_counter() { in_ns nft -j list counters | python3 "$T/counter.py" "$1"; }

# ---- the namespaces ----
netns_pair "$IN" "$OUT"
ip -n "$OUT" addr add 10.99.0.3/24 dev "$NETNS_VETH_OUT"
ip -n "$OUT" addr add fd00:99::3/64 dev "$NETNS_VETH_OUT" nodad

ip netns exec "$IN" python3 "$T/listen.py" "$T/ready" 5902 5910 6200 6150 &
track $!
for _ in $(seq 50); do [ -e "$T/ready" ] && break; sleep 0.1; done
[ -e "$T/ready" ] || { bad "listener did not start"; exit 1; }

CONF=$T/vmgate.conf
cat >"$CONF" <<EOF
[gateway]
address = ::
auth = file
passwd_file = $T/passwd

[firewall]
protect = 5900-6100
allow = 10.99.0.3 fd00:99::3

[vm dev0]
vnc = 127.0.0.1:5999
vnc_port = 5910
spice = unix:$T/dev0.spice
spice_port = 6200
users = alice
EOF

echo "# t30-fw-netns: $VMGATE, namespaces $IN / $OUT"

# ---- before: everything reachable ----
check "before apply: raw 5902 reachable from outside" OPEN "$(netns_probe "$OUT" 10.99.0.1 5902 10.99.0.2)"

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
check "raw 5902 from outside (IPv4) is refused" REFUSED "$(netns_probe "$OUT" 10.99.0.1 5902 10.99.0.2)"
r1=$(counter raw_rejected)
[ "$r1" -gt "$r0" ] && ok "raw_rejected counted the IPv4 reject ($r0 -> $r1)" || bad "raw_rejected did not move on IPv4 ($r0 -> $r1)"
check "raw 5902 from outside (IPv6) is refused" REFUSED "$(netns_probe "$OUT" fd00:99::1 5902 fd00:99::2)"
r2=$(counter raw_rejected)
[ "$r2" -gt "$r1" ] && ok "raw_rejected counted the IPv6 reject ($r1 -> $r2)" || bad "raw_rejected did not move on IPv6 ($r1 -> $r2)"
check "nft's own counter agrees with status" "$r2" "$(nft_counter raw_rejected)"

# ---- vmgate's ports open, inside and outside the range ----
g0=$(counter gw_new)
check "vmgate port 5910 (inside the range) open over IPv4" OPEN "$(netns_probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
check "vmgate port 5910 open over IPv6" OPEN "$(netns_probe "$OUT" fd00:99::1 5910 fd00:99::2)"
check "vmgate port 6200 (outside the range) open" OPEN "$(netns_probe "$OUT" 10.99.0.1 6200 10.99.0.2)"
g1=$(counter gw_new)
check "gw_new counted 3 new connections" 3 "$((g1 - g0))"
check "a port that is not ours (6150) is untouched" OPEN "$(netns_probe "$OUT" 10.99.0.1 6150 10.99.0.2)"
check "raw_rejected unchanged by all that" "$r2" "$(counter raw_rejected)"

# ---- the allowlist ----
a0=$(counter raw_allowed)
check "allowed 10.99.0.3 reaches raw 5902" OPEN "$(netns_probe "$OUT" 10.99.0.1 5902 10.99.0.3)"
check "allowed fd00:99::3 reaches raw 5902" OPEN "$(netns_probe "$OUT" fd00:99::1 5902 fd00:99::3)"
check "10.99.0.2 (not allowed) still refused" REFUSED "$(netns_probe "$OUT" 10.99.0.1 5902 10.99.0.2)"
a1=$(counter raw_allowed)
check "raw_allowed counted 2 connections" 2 "$((a1 - a0))"

# ---- loopback inside ----
l0=$(counter lo_new)
r0=$(counter raw_rejected)
check "loopback 127.0.0.1:5902 inside" OPEN "$(netns_probe "$IN" 127.0.0.1 5902)"
check "loopback [::1]:5902 inside" OPEN "$(netns_probe "$IN" ::1 5902)"
check "the host's own address 10.99.0.1:5902 from inside (via lo)" OPEN "$(netns_probe "$IN" 10.99.0.1 5902)"
l1=$(counter lo_new)
check "lo_new counted 3 loopback connections" 3 "$((l1 - l0))"
check "raw_rejected unchanged by loopback" "$r0" "$(counter raw_rejected)"

# ---- bans: dropped (timeout), not reset ----
out=$(fw ban 10.99.0.2 --for 1h -c "$CONF" 2>&1); rc=$?
check "ban 10.99.0.2 exits 0" 0 "$rc"
b0=$(counter ban_dropped)
check "banned 10.99.0.2 -> vmgate port times out" TIMEOUT "$(PROBE_TIMEOUT=2 netns_probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
b1=$(counter ban_dropped)
[ "$b1" -gt "$b0" ] && ok "ban_dropped counted the dropped SYNs ($b0 -> $b1)" || bad "ban_dropped did not move ($b0 -> $b1)"
check "10.99.0.3 (not banned) still gets in" OPEN "$(netns_probe "$OUT" 10.99.0.1 5910 10.99.0.3)"
out=$(fw status -c "$CONF" 2>&1)
echo "$out" | grep -Eq '^  10\.99\.0\.2 +(59m[0-9]+s|1h) left \(of 1h\)' && ok "status lists the ban with its time left" || bad "status bans: $out"
out=$(fw ban fd00:99::2/64 --for 10m -c "$CONF" 2>&1); rc=$?
case "$out" in *"is in the allowlist (fd00:99::3)"*) check "banning a /64 that holds an allowed source is refused" 1 "$rc" ;;
    *) bad "ban of a /64 with an allowed source: rc $rc: $out" ;; esac
out=$(fw ban fd00:99::2 --for 10m -c "$CONF" 2>&1); rc=$?
check "ban fd00:99::2 exits 0" 0 "$rc"
check "banned IPv6 source -> vmgate port times out" TIMEOUT "$(netns_probe "$OUT" fd00:99::1 5910 fd00:99::2)"
check "fd00:99::3 (not banned) still gets in over IPv6" OPEN "$(netns_probe "$OUT" fd00:99::1 5910 fd00:99::3)"
out=$(fw unban 10.99.0.2 2>&1); rc=$?
check "unban 10.99.0.2 exits 0" 0 "$rc"
check "after unban 10.99.0.2 gets in again" OPEN "$(netns_probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
out=$(fw unban fd00:99::2 2>&1)
check "after unban fd00:99::2 gets in again" OPEN "$(netns_probe "$OUT" fd00:99::1 5910 fd00:99::2)"
out=$(fw unban 10.99.0.2 2>&1); rc=$?
case "$out" in *"was not banned"*) check "unban of an address not banned exits 0" 0 "$rc" ;; *) bad "unban again: $out" ;; esac

# ---- a short ban expires by itself ----
t0=$(date +%s.%N)
out=$(fw ban 10.99.0.2 --for 2s 2>&1); rc=$?
check "ban --for 2s exits 0" 0 "$rc"
check "during the 2s ban: timeout" TIMEOUT "$(PROBE_TIMEOUT=1 netns_probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
sleep "$(python3 -c "import time; print(max(0.1, $t0 + 2.5 - time.time()))")"
check "after 2s the ban has expired: open" OPEN "$(netns_probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
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
check "with a foreign policy-drop table, vmgate's port times out" TIMEOUT "$(netns_probe "$OUT" 10.99.0.1 5910 10.99.0.2)"
check "and the raw port is still refused by vmgate (its accept of 5902 does not open it)" REFUSED "$(netns_probe "$OUT" 10.99.0.1 5902 10.99.0.2)"
out=$(fw status -c "$CONF" 2>&1)
case "$out" in *"table inet hostfw, chain input (hook input, priority 0, policy drop)"*"must be opened there too"*) ok "status warns about the foreign drop policy" ;; *) bad "status warning: $out" ;; esac
in_ns nft delete table inet hostfw
check "foreign table gone: vmgate's port open again" OPEN "$(netns_probe "$OUT" 10.99.0.1 5910 10.99.0.2)"

# ---- remove: the range is open again, no trace left ----
out=$(fw remove 2>&1); rc=$?
check "remove exits 0" 0 "$rc"
check "after remove the raw port answers again" OPEN "$(netns_probe "$OUT" 10.99.0.1 5902 10.99.0.2)"
check "after remove nft holds nothing" "" "$(netns_ruleset "$IN")"

checks_done
