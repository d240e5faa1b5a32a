#!/bin/bash
# t73-unit-caps: vmgate works inside the limits dist/vmgate.service sets on
# it: the unit's CapabilityBoundingSet (read from the unit file) and
# NoNewPrivileges, applied with setpriv(1) as systemd would (this machine's
# systemd is not PID 1, so the unit itself cannot be started here).  In a
# network namespace, as root, with auth = pam through the real pam_unix (a
# throwaway user, as t17), user = nobody and a [firewall] section:
#  - the firewall table is applied (CAP_NET_ADMIN is enough for libnftables);
#  - the privilege drop works and leaves the network process no capabilities;
#  - the right Unix password passes PAM + ACL (log: the VM is not running —
#    no QEMU here, so a successful login ends there), a wrong one is "bad
#    password": pam_unix reads /etc/shadow as root, no setuid unix_chkpwd
#    needed under no_new_privs;
# and two negative controls show the test sees a missing capability:
#  - without CAP_SETUID/CAP_SETGID vmgate refuses to start (cannot switch user);
#  - without CAP_NET_ADMIN it says it cannot manage the firewall.
. "$(dirname "$0")/lib.sh"
need_root "runs vmgate as root under a capability bounding set"
need_vmgate
need_tools "the capability test" setpriv nft ip
[ -f /etc/pam.d/common-auth ] || skip "no /etc/pam.d/common-auth (not Debian-style PAM)"
id nobody >/dev/null 2>&1 || skip "no user 'nobody'"

caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$ROOT/dist/vmgate.service")
[ -n "$caps" ] || fail "no CapabilityBoundingSet= in dist/vmgate.service"
# "CAP_A CAP_B" -> "-all,+a,+b" for setpriv
bset() { local s=-all c; for c in "$@"; do s+=",+$(echo "${c#CAP_}" | tr 'A-Z' 'a-z')"; done; echo "$s"; }
# shellcheck disable=SC2086
BSET=$(bset $caps)
say "unit bounding set: $caps -> setpriv --bounding-set $BSET --no-new-privs"

U=vmgtcu$$; U=${U:0:30}
SERVICE=vmgate-test-$$
PW='Caps-pw 7y!'
useradd --system --no-create-home --shell /usr/sbin/nologin "$U" || fail "useradd failed"
at_cleanup "userdel -f '$U'"
printf '%s:%s\n' "$U" "$PW" | chpasswd || fail "chpasswd failed"
at_cleanup "rm -f '/etc/pam.d/$SERVICE'"
printf '# vmgate integration test %s, removed at its end\n@include common-auth\n@include common-account\n' \
    "$TEST_NAME" >"/etc/pam.d/$SERVICE"

NS=vmgcap$$
netns_add "$NS"
make_certs
P=$(free_port)
conf() {   # FILE
    write_config "$1" auth=pam pam_service="$SERVICE" -passwd_file user=nobody -- \
        vm a vnc=127.0.0.1:1 vnc_port="$P" users="$U"
    printf '\n[firewall]\nprotect = 5900-6100\n' >>"$1"
}
conf "$T/vmgate.conf"
chmod 755 "$T/tls"; chmod 644 "$T/tls/server.crt"   # the key stays 0600, read as root

# run_bounded BSET LOG: vmgate run in $NS under the bounding set and no_new_privs
run_bounded() {
    ip netns exec "$NS" setpriv --bounding-set "$1" --no-new-privs -- \
        "$VMGATE" run -c "$T/vmgate.conf" >"$2" 2>&1 </dev/null &
}

# ---- the unit's set: everything works
VMGATE_LOG=$T/vmgate.log
add_log "$VMGATE_LOG"
run_bounded "$BSET" "$VMGATE_LOG"
VMGATE_PID=$!
track "$VMGATE_PID"
wait_for 15 log_has 'vmgate started' || fail "vmgate did not start under the unit's bounding set"
expect_log "firewall: table inet vmgate applied"
ip netns exec "$NS" nft list table inet vmgate >/dev/null 2>&1 || fail "no table inet vmgate in the namespace"
expect_log "network-facing process runs as nobody"
grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$VMGATE_PID/status" || fail "no_new_privs is not set on vmgate"
grep -q '^CapEff:[[:space:]]*0*$' "/proc/$VMGATE_PID/status" || fail "the network process kept capabilities"

ip netns exec "$NS" "$PY" "$TOOLS/rawrfb.py" login 127.0.0.1 "$P" "$CA" "$U" "$PW" >"$T/ok.txt" 2>&1 || true
expect_log "vm a is not running"
log_has "login failed for user \"$U\"" && fail "the right pam_unix password was refused under the bounding set"
ip netns exec "$NS" "$PY" "$TOOLS/rawrfb.py" login 127.0.0.1 "$P" "$CA" "$U" 'wrong one' >"$T/bad.txt" 2>&1 || true
expect_log "login failed for user \"$U\": bad password"
stop_vmgate
ip netns exec "$NS" nft delete table inet vmgate 2>/dev/null || true

# ---- negative controls
minus() {   # CAP...: the unit's set without these
    local c out=() x
    for c in $caps; do
        for x in "$@"; do [ "$c" = "$x" ] && continue 2; done
        out+=("$c")
    done
    bset "${out[@]}"
}
run_bounded "$(minus CAP_SETUID CAP_SETGID)" "$T/nosetuid.log"
pid=$!
track "$pid"
wait_for 10 _not_alive "$pid" || fail "vmgate without CAP_SETUID/CAP_SETGID kept running"
grep -q "cannot switch to user nobody" "$T/nosetuid.log" ||
    { cat "$T/nosetuid.log"; fail "without CAP_SETUID/CAP_SETGID: no 'cannot switch to user'"; }

run_bounded "$(minus CAP_NET_ADMIN)" "$T/nonetadmin.log"
pid=$!
track "$pid"
wait_for 15 grep -q 'vmgate started' "$T/nonetadmin.log" || { cat "$T/nonetadmin.log"; fail "vmgate without CAP_NET_ADMIN did not start"; }
grep -q "lacks CAP_NET_ADMIN" "$T/nonetadmin.log" ||
    { cat "$T/nonetadmin.log"; fail "without CAP_NET_ADMIN: no 'lacks CAP_NET_ADMIN' warning"; }
kill -TERM "$pid"
wait_for 5 _not_alive "$pid" || fail "vmgate did not stop"
true
