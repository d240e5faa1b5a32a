#!/bin/bash
# tests/integration/t31-fw-cli.sh — `vmgate firewall` state handling.
#
# Runs every command inside one network namespace of its own (vmgt-cli-PID),
# so the host's ruleset is never touched; the only traffic is on that
# namespace's loopback.  Covers: bad input gets a precise error and changes
# nothing; config errors install nothing; apply twice is a no-op; drift is
# reported; an everyday apply keeps bans and counters; a layout change
# replaces the table and carries the bans over; a flushed table is put back
# by apply; remove leaves no trace; CAP_NET_ADMIN is enough.
#
# Needs root.  VMGATE=path overrides the binary (default $BUILD/vmgate).
. "$(dirname "$0")/lib.sh"
checklist
need_root "t31-fw-cli: a network namespace and nftables"
need_tools t31-fw-cli ip nft python3 timeout
need_vmgate

NS=vmgt-cli-$$
ns() { timeout 60 ip netns exec "$NS" "$@"; }
fw() { ns "$VMGATE" firewall "$@"; }
# expect DESC RC SUBSTRING CMD...: exit code and a piece of the output
expect() {
    local desc=$1 want_rc=$2 want=$3 out rc
    shift 3
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" != "$want_rc" ]; then
        bad "$desc: exit $rc, expected $want_rc: $out"
    elif [[ "$out" != *"$want"* ]]; then
        bad "$desc: output lacks '$want': $out"
    else
        ok "$desc"
    fi
}
ruleset() { netns_ruleset "$NS"; }   # stateless: no counter values

netns_add "$NS"

mkconf() {   # mkconf FILE PROTECT ALLOW
    cat >"$1" <<EOF
[gateway]
address = 0.0.0.0
auth = file
passwd_file = $T/passwd

[firewall]
protect = $2
allow = $3

[vm dev0]
vnc = 127.0.0.1:5999
vnc_port = 5902
spice = unix:$T/dev0.spice
spice_port = 5932
users = alice
EOF
    chmod 644 "$1"
}
CONF=$T/vmgate.conf
mkconf "$CONF" 5900-6100 "192.0.2.0/24 2001:db8:5::/48"

echo "# t31-fw-cli: $VMGATE, namespace $NS"

# ---- config errors install nothing ----
mkconf "$T/lo.conf" 5900-6100 "127.0.0.1"
expect "apply refuses a loopback allow entry" 1 '"127.0.0.1" is loopback' fw apply -c "$T/lo.conf"
mkconf "$T/ov.conf" 5900-6100 "10.0.0.0/8 10.1.0.0/16"
expect "apply refuses overlapping allow entries" 1 "10.1.0.0/16 overlaps 10.0.0.0/8" fw apply -c "$T/ov.conf"
expect "apply with a missing config" 1 "$T/none.conf" fw apply -c "$T/none.conf"
check "nothing was installed by the failed applies" "" "$(ruleset)"
expect "status before apply: not installed" 1 "not installed" fw status -c "$CONF"
expect "show renders what nft accepts" 0 "" bash -o pipefail -c "ip netns exec $NS $VMGATE firewall show -c $CONF | ip netns exec $NS nft -c -f -"

# ---- apply, twice ----
expect "apply installs" 0 "installed table inet vmgate" fw apply -c "$CONF"
expect "apply again is a no-op" 0 "nothing to do" fw apply -c "$CONF"
expect "status in sync" 0 "in sync" fw status -c "$CONF"
before=$(ruleset)

# ---- bad input: precise error, nothing changed ----
expect "ban: not an address" 1 '"10.0.0.300" is not an IPv4 or IPv6 address' fw ban 10.0.0.300
expect "ban: host name" 1 '"vnc.example.com" is not an IPv4 or IPv6 address (host names are not accepted)' fw ban vnc.example.com
expect "ban: IPv4 prefix too long" 1 'prefix /33 is longer than an IPv4 address' fw ban 10.0.0.0/33
expect "ban: IPv6 prefix too long" 1 'prefix /129 is longer than an IPv6 address' fw ban fd00::/129
expect "ban: loopback" 1 "127.0.0.1 is loopback, which is never banned" fw ban 127.0.0.1
expect "ban: IPv6 loopback" 1 "::1 is loopback, which is never banned" fw ban ::1
expect "ban: mapped loopback" 1 "127.0.0.1 is loopback" fw ban ::ffff:127.0.0.1
expect "ban: a range holding loopback" 1 "0.0.0.0/0 contains loopback" fw ban 0.0.0.0/0
expect "ban: unspecified" 1 ":: is the unspecified address" fw ban ::
expect "ban: an allowed source" 1 "is in the allowlist (192.0.2.0/24)" fw ban 192.0.2.9
expect "ban: nft syntax smuggled in" 1 "is not an IPv4 or IPv6 address" fw ban "10.0.0.1 }; flush ruleset; {"
expect "ban: zero time" 1 "between 1s and 365d" fw ban 198.51.100.1 --for 0s
expect "ban: time too long" 1 "between 1s and 365d" fw ban 198.51.100.1 --for 400d
expect "allow: loopback" 1 "127.0.0.0/8 is loopback, which is always allowed" fw allow 127.0.0.0/8
expect "allow: not a CIDR" 1 "is not an IPv4 or IPv6 address" fw allow "1.2.3.4 }"
expect "allow: prefix too long" 1 "prefix /200 is longer than an IPv6 address" fw allow 2001:db8::/200
expect "allow: overlapping an allowed range" 1 "overlaps the allowed range 192.0.2.0/24" fw allow 192.0.0.0/16
expect "deny: part of an allowed range" 1 "192.0.2.7 is inside the allowed range 192.0.2.0/24" fw deny 192.0.2.7
expect "unban: not an address" 1 "is not an IPv4 or IPv6 address" fw unban nope
check "the ruleset is unchanged after all the bad input" "$before" "$(ruleset)"
expect "usage: no subcommand" 2 "missing subcommand" fw
expect "usage: unknown subcommand" 2 'unknown subcommand "frobnicate"' fw frobnicate
expect "usage: ban without ADDR" 2 'missing ADDR for "ban"' fw ban
expect "usage: extra argument" 2 'unexpected argument "5.6.7.8"' fw ban 1.2.3.4 5.6.7.8
expect "usage: unknown option" 2 'unknown option "--forever"' fw ban 1.2.3.4 --forever
expect "usage: bad duration" 2 'not a duration' fw ban 1.2.3.4 --for soon
expect "usage: --for with unban" 2 '--for only goes with "ban"' fw unban 1.2.3.4 --for 1m
expect "help" 0 "usage: vmgate firewall apply" fw --help

# ---- run-time allow/deny and drift ----
expect "allow a new range" 0 "until the next apply" fw allow 198.51.100.0/24
expect "allow something covered" 0 "already allowed (by 198.51.100.0/24)" fw allow 198.51.100.7
expect "status reports the run-time entry as drift" 1 "not in the config: 198.51.100.0/24" fw status -c "$CONF"
expect "deny it" 0 "removed 198.51.100.0/24 from the allowlist" fw deny 198.51.100.0/24
expect "deny again: nothing to do" 0 "was not in the allowlist" fw deny 198.51.100.0/24
expect "deny a config entry says apply brings it back" 0 "the config still lists it" fw deny 192.0.2.0/24 -c "$CONF"
expect "apply restores the config's allowlist" 0 "updated table inet vmgate" fw apply -c "$CONF"
expect "in sync again" 0 "in sync" fw status -c "$CONF"

# ---- an everyday apply keeps bans and counters ----
expect "ban for 1h" 0 "banned 198.51.100.7 on vmgate's ports for 1h" fw ban 198.51.100.7 --for 1h
expect "ban again for 2h restarts the timer" 0 "for 2h" fw ban 198.51.100.7 --for 2h
expect "status shows the new ban time" 0 "(of 2h)" fw status -c "$CONF"
expect "ban a v6 /64" 0 "banned 2001:db8:9:9::/64" fw ban 2001:db8:9:9::1/64 --for 30m
expect "ban inside a banned /64 is refused" 1 "already banned as part of 2001:db8:9:9::/64" fw ban 2001:db8:9:9::5
expect "unban inside a banned /64 names the /64" 1 "unban 2001:db8:9:9::/64 instead" fw unban 2001:db8:9:9::5
ns python3 -c 'import socket
for p in (5901, 5903):
    s = socket.socket(); s.settimeout(1)
    try: s.connect(("127.0.0.1", p))
    except OSError: pass
    s.close()'
lo=$(fw status -c "$CONF" 2>/dev/null | awk '$1 == "lo_new" { print $2 }')
check "lo_new counted two loopback connections" 2 "$lo"
mkconf "$T/b.conf" 5900-6000 "192.0.2.0/24 2001:db8:5::/48"
expect "status: a new protect range is drift" 1 'expected "vmgate: loopback to 5900-6000, new"' fw status -c "$T/b.conf"
expect "apply of the new range updates in place" 0 "bans and counters kept" fw apply -c "$T/b.conf"
out=$(fw status -c "$T/b.conf" 2>&1)
case "$out" in *"198.51.100.7"*"(of 2h)"*"2001:db8:9:9::/64"*) ok "bans survived the everyday apply" ;; *) bad "bans after apply: $out" ;; esac
check "lo_new survived the everyday apply" 2 "$(echo "$out" | awk '$1 == "lo_new" { print $2 }')"
ns nft list chain inet vmgate input | grep -q 'tcp dport 5900-6000 counter name "raw_rejected"' \
    && ok "the chain now protects 5900-6000" || bad "chain not updated"

# ---- a layout change replaces the table, carrying the bans ----
ns nft add set inet vmgate leftover '{ type ipv4_addr; }'
expect "status: foreign object is a layout difference" 1 "layout differs" fw status -c "$T/b.conf"
expect "apply replaces and carries the bans" 0 "2 ban(s) carried over" fw apply -c "$T/b.conf"
out=$(fw status -c "$T/b.conf" 2>&1); rc=$?
check "in sync after the replace" 0 "$rc"
echo "$out" | grep -Eq '^  198\.51\.100\.7 +1h5[0-9]m[0-9]*s? left \(of 2h\)' \
    && ok "the carried ban kept its remaining time" || bad "carried ban: $out"
echo "$out" | grep -q '^  2001:db8:9:9::/64 ' && ok "the IPv6 ban was carried too" || bad "v6 ban lost: $out"

# ---- flushed by someone else: apply puts it back ----
ns nft flush ruleset
expect "after flush ruleset: not installed" 1 "not installed" fw status -c "$CONF"
expect "apply puts it back" 0 "installed table inet vmgate" fw apply -c "$CONF"

# ---- CAP_NET_ADMIN is enough, nothing less ----
if command -v setpriv >/dev/null 2>&1; then
    expect "as nobody without capabilities: permission error" 1 "needs root or CAP_NET_ADMIN" \
        ns setpriv --reuid 65534 --regid 65534 --clear-groups --inh-caps=-all "$VMGATE" firewall status -c "$CONF"
    expect "as nobody with CAP_NET_ADMIN: works" 0 "in sync" \
        ns setpriv --reuid 65534 --regid 65534 --clear-groups --inh-caps=+net_admin \
        --ambient-caps=+net_admin "$VMGATE" firewall status -c "$CONF"
else
    echo "# setpriv missing: capability checks skipped"
fi

# ---- remove leaves no trace ----
expect "remove" 0 "removed table inet vmgate" fw remove
check "nothing left in the namespace's ruleset" "" "$(ruleset)"
expect "remove again is fine" 0 "was not installed" fw remove
expect "ban without the table explains" 1 "not installed (run \`vmgate firewall apply\`)" fw ban 198.51.100.7

checks_done
