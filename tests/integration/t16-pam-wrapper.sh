#!/bin/bash
# t16-pam-wrapper: auth = pam, with pam_wrapper (LD_PRELOAD) pointing libpam at
# a private service dir whose service uses pam_matrix (a passdb text file) for
# both auth and account.  No root, no real users.
#  - alice, right password            -> session, the VM's screen
#  - alice, wrong password            -> refused, log "bad password"
#  - carol (passdb entry for another service: pam_acct_mgmt fails)
#                                      -> refused, log "account refused"
#  - mallory (not in passdb)          -> refused, log "unknown user" or "bad password"
#  - dave (valid for PAM, not in the VM's users)
#                                      -> refused, log "not allowed on this vm"
# All refusals carry the same "Authentication failed" to the viewer.
. "$(dirname "$0")/lib.sh"
need_vmgate

PWLIB=$(first_file /usr/lib/*/libpam_wrapper.so)
MATRIX=$(first_file /usr/lib/*/pam_wrapper/pam_matrix.so)
[ -n "$PWLIB" ] && [ -n "$MATRIX" ] || fail "libpam-wrapper is not installed (scripts/deps.sh installs it)"

SERVICE=vmgate-pw-test
mkdir -p "$T/pam.d"
cat >"$T/passdb" <<EOF
alice:matrix-alice-pw:$SERVICE
carol:matrix-carol-pw:some-other-service
dave:matrix-dave-pw:$SERVICE
EOF
printf 'auth required %s passdb=%s\naccount required %s passdb=%s\n' \
    "$MATRIX" "$T/passdb" "$MATRIX" "$T/passdb" >"$T/pam.d/$SERVICE"
DENY=$(first_file /usr/lib/*/security/pam_deny.so /lib/*/security/pam_deny.so)
printf 'auth required %s\naccount required %s\n' "$DENY" "$DENY" >"$T/pam.d/other"

make_certs
start_qemu a qmp
PORT=$(free_port)
write_config "$T/vmgate.conf" auth=pam pam_service="$SERVICE" auth_workers=1 -passwd_file -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users="alice carol mallory"
VMGATE_ENV=(LD_PRELOAD="$PWLIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d")
start_vmgate "$T/vmgate.conf"

vncviewer_start ok alice 'matrix-alice-pw' "$PORT"
expect_viewer_connected ok
expect_viewer_shows ok a
expect_log "vm=a user=alice from=[^ ]+: session started"
stop_viewer ok

refused() {   # ID USER PASS LOG-REASON-ERE
    vncviewer_start "$1" "$2" "$3" "$PORT"
    expect_viewer_refused "$1" "Authentication failed"
    expect_log "conn=[0-9]+ vm=a from=[^ ]+: login failed for user \"$2\": ($4)"
}
refused wrong alice 'not-alices-pw' 'bad password'
refused acct carol 'matrix-carol-pw' 'account refused'
refused unknown mallory 'anything' 'unknown user|bad password'
refused acl dave 'matrix-dave-pw' 'not allowed on this vm'

for pw in matrix-alice-pw not-alices-pw matrix-carol-pw matrix-dave-pw; do
    grep -q -- "$pw" "$VMGATE_LOG" && fail "password '$pw' appears in vmgate's log"
done
true
