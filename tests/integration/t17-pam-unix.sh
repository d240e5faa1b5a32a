#!/bin/bash
# t17-pam-unix: auth = pam through the real /etc/pam.d stack (common-auth +
# common-account, i.e. pam_unix) with a throwaway system user and group,
# created here and removed in the cleanup trap even when the test fails.
# The VM admits the user through its group (groups = GROUP, users empty).
#  - right password                  -> session, the VM's screen
#  - wrong password                  -> refused, log "bad password", and answered
#                                       quickly (fail_delay = 0 replaces pam_unix's ~2 s delay)
#  - expired account (chage -E 1)    -> refused, log "account refused"
# Needs root (useradd, /etc/pam.d); skipped otherwise.
. "$(dirname "$0")/lib.sh"
need_vmgate
need_root "creates a throwaway system user and /etc/pam.d service"
[ -f /etc/pam.d/common-auth ] && [ -f /etc/pam.d/common-account ] || skip "no /etc/pam.d/common-auth (not Debian-style PAM)"

U=vmgtpu$$; U=${U:0:30}
G=vmgtpg$$; G=${G:0:30}
SERVICE=vmgate-test-$$
PW='Unix-pw 9z!'

groupadd --system "$G" || fail "groupadd failed"
at_cleanup "groupdel '$G'"
useradd --system --no-create-home --shell /usr/sbin/nologin -G "$G" "$U" || fail "useradd failed"
at_cleanup "userdel -f '$U'"
printf '%s:%s\n' "$U" "$PW" | chpasswd || fail "chpasswd failed"
at_cleanup "rm -f '/etc/pam.d/$SERVICE'"
printf '# vmgate integration test %s, removed at its end\n@include common-auth\n@include common-account\n' \
    "$TEST_NAME" >"/etc/pam.d/$SERVICE"

make_certs
start_qemu a unix
PORT=$(free_port)
write_config "$T/vmgate.conf" auth=pam pam_service="$SERVICE" -passwd_file fail_delay=0 -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users= groups="$G"
VMGATE_RUN_ARGS=(-v)
start_vmgate "$T/vmgate.conf"

vncviewer_start ok "$U" "$PW" "$PORT"
expect_viewer_connected ok
expect_viewer_shows ok a
expect_log "vm=a user=$U from=[^ ]+: session started"
stop_viewer ok

vncviewer_start wrong "$U" 'not the unix pw' "$PORT"
expect_viewer_refused wrong "Authentication failed"
expect_log "conn=[0-9]+ vm=a from=[^ ]+: login failed for user \"$U\": bad password"

# pam_unix asks for a ~2 s delay on failure; the helper's no-op PAM_FAIL_DELAY
# must remove it.  The answer itself now waits for the helper's failure budget
# (the slowest recent check, so all failures take the same time), so look at
# the check's own duration, which the helper logs at debug level (-v).
"$PY" "$TOOLS/rawrfb.py" login 127.0.0.1 "$PORT" "$CA" "$U" 'still not it' >"$T/raw.txt" 2>&1 || true
grep -qx 'result=failed' "$T/raw.txt" || { cat "$T/raw.txt"; fail "raw login with a wrong password was not refused"; }
el=$(sed -n 's/^auth_elapsed=//p' "$T/raw.txt")
for _ in $(seq 50); do
    grep -q "failed login from 127.0.0.1 (bad password)" "$VMGATE_LOG" && break
    sleep 0.1
done
ms=$(grep -B1 "failed login from 127.0.0.1 (bad password)" "$VMGATE_LOG" |
     sed -n 's/.*: check took \([0-9]*\) ms$/\1/p' | tail -1)
[ -n "$ms" ] || fail "the helper did not log the wrong password's check time"
[ "$ms" -lt 1500 ] ||
    fail "wrong password checked in ${ms} ms with fail_delay=0: pam_unix's own delay was not replaced"
say "wrong pam_unix password checked in ${ms} ms, answered in ${el}s"

chage -E 1 "$U" || fail "chage failed"
vncviewer_start expired "$U" "$PW" "$PORT"
expect_viewer_refused expired "Authentication failed"
expect_log "conn=[0-9]+ vm=a from=[^ ]+: login failed for user \"$U\": account refused"
grep -q -- "$PW" "$VMGATE_LOG" && fail "the password appears in vmgate's log"
true
