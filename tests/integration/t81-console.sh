#!/bin/bash
# t81-console: `vmgate console` as an RFB transport.
#   Locally: an allowed throwaway user's RFB client over the command's
#   stdin/stdout gets ServerInit (-c CONFIG, config world-readable, and
#   --socket-dir); a refused user gets the RFB refusal on stdout and one line
#   "vmgate console: user NAME may not open VM a" on stderr, exit status 1.
#   Through a private sshd: `ssh host vmgate console -c CONFIG a` is the
#   transport: ServerInit for the allowed user, the refusal line and exit
#   status 1 (ssh passes it on) for the other.
#   Usage errors: no VM, a VM name with '/', an unknown VM.
. "$(dirname "$0")/lib.sh"
need_vmgate
need_root "throwaway users and sshd"

make_certs
make_passwd nobody-here 'unused'
make_user ALLOWED
make_user DENIED
start_qemu a unix
write_config "$T/a.conf" -- vm a vnc="${QEMU_BACKEND[a]}" users="$ALLOWED"
chmod 644 "$T/a.conf"
start_vmgate "$T/a.conf" 1
expect_log "listening for vm a \(vnc\) on unix:$T/run/a.vnc"
# the users run a copy of vmgate they can reach
mkdir -p "$T/bin"
cp "$VMGATE" "$T/bin/vmgate"
chmod 755 "$T/bin" "$T/bin/vmgate"
VG=$T/bin/vmgate

raw() {   # OUTFILE CMD...: output (stdout+stderr) to $T/raw.OUTFILE
    local out=$T/raw.$1
    shift
    "$@" >"$out" 2>&1 || true
    add_log "$out"
    RAW=$out
}
has() { grep -Eqx -- "$1" "$RAW" || { cat "$RAW"; fail "$CASE: expected a line '$1'"; }; }
hasnt() { ! grep -Eq -- "$1" "$RAW" || { cat "$RAW"; fail "$CASE: unexpected '$1'"; }; }

for how in "-c $T/a.conf" "--socket-dir $T/run"; do
    CASE="local allowed ($how)"
    raw ok runuser -u "$ALLOWED" -- "$PY" "$TOOLS/localrfb.py" login "exec:$VG console $how a"
    has 'result=ok'; has 'width=720'; has 'name=QEMU \(a\)'; has 'exit=0'
    CASE="local refused ($how)"
    raw no runuser -u "$DENIED" -- "$PY" "$TOOLS/localrfb.py" login "exec:$VG console $how a"
    has 'result=refused'; has "reason=user $DENIED may not open VM a"
    has "vmgate console: user $DENIED may not open VM a"; has 'exit=1'
done
say "local: $ALLOWED gets ServerInit through vmgate console; $DENIED gets one line and status 1"

start_sshd "$ALLOWED" "$DENIED"
sshcmd() {   # USER: the ssh command line running vmgate console on the host
    echo "ssh -F /dev/null -i $T/ssh/id.$1 -o BatchMode=yes -o StrictHostKeyChecking=no" \
        "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p $SSHD_PORT $1@127.0.0.1" \
        "$VG console -c $T/a.conf a"
}
CASE="ssh allowed"
raw sshok "$PY" "$TOOLS/localrfb.py" login "exec:$(sshcmd "$ALLOWED")"
has 'result=ok'; has 'width=720'; has 'name=QEMU \(a\)'
CASE="ssh refused"
raw sshno "$PY" "$TOOLS/localrfb.py" login "exec:$(sshcmd "$DENIED")"
has 'result=refused'; has "vmgate console: user $DENIED may not open VM a"; has 'exit=1'
say "over ssh: $(grep 'vmgate console:' "$RAW")"
expect_log "user=$ALLOWED from=uid:$(id -u "$ALLOWED") via=unix: session started"

CASE="usage"
rc=0; "$VG" console >"$T/u1" 2>&1 || rc=$?
[ "$rc" = 2 ] || { cat "$T/u1"; fail "vmgate console without a VM: status $rc, expected 2"; }
rc=0; "$VG" console --socket-dir "$T/run" ../a >"$T/u2" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q 'bad VM name' "$T/u2" || { cat "$T/u2"; fail "a VM name with / was not refused"; }
rc=0; "$VG" console -c "$T/a.conf" nosuch </dev/null >"$T/u3" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q 'no VM nosuch' "$T/u3" || { cat "$T/u3"; fail "unknown VM: status $rc"; }
stop_vmgate
