#!/bin/bash
# t94-vm-cmd: `vmgate vm VM status|shutdown|reset|reboot|pause|resume`
# (issue 14 part 2) as throwaway local users against real QEMU; the test
# reads the run state on a second QMP monitor.
#   - a power user: status (QEMU's word, who is connected), pause -> paused
#     in query-status, resume -> running, reset -> RESET event, shutdown ->
#     POWERDOWN, exit 0; reboot without qga: exit 3 naming qga;
#   - a user in users only: status yes; pause refused naming power_users/
#     power_groups, exit 1, the VM stays running;
#   - a user in neither: status refused naming users/groups, exit 1;
#   - a VM whose monitor is gone: exit 3; a VM without qmp: exit 3; an
#     unknown VM: exit 1; usage errors: exit 2;
#   - garbage and over-long `vm` requests on the control socket get a clear
#     error, and vmgate serves the next request;
#   - `ssh host vmgate vm dev0 reset` through a private sshd (issue 14): as
#     the power user exit 0 and a RESET event; as the user in users only
#     exit 1, the refusal naming power_users/power_groups, no RESET;
#   - audit: a `power` event for each action (via control).
. "$(dirname "$0")/lib.sh"
need_vmgate
need_root "useradd for the authorization test"

make_certs
make_passwd alice 'alice pw 94'
start_qemu dev0 qmp
start_qemu dev2 unix
EVENTS=$T/events.jsonl
"$PY" "$TOOLS/xvp.py" events "${QEMU_CTL[dev0]}" "$EVENTS" &
track $!
wait_for 10 grep -q watching "$EVENTS" 2>/dev/null || fail "QMP event watcher did not start"
make_user POWER
make_user VIEWER
make_user NOBODY
chmod 755 "$T"
P0=$(free_port)
P2=$(free_port)
AUDIT=$T/audit.jsonl
write_config "$T/vmgate.conf" audit="$AUDIT" -- \
    vm dev0 vnc="${QEMU_BACKEND[dev0]}" vnc_port="$P0" users="alice $VIEWER" power_users=alice \
        power_groups="$POWER" \
    vm dev1 vnc="unix:$T/gone.vnc" qmp="$T/gone.qmp" users="$POWER" power_users="$POWER" \
    vm dev2 vnc="${QEMU_BACKEND[dev2]}" vnc_port="$P2" users="$POWER" power_users="$POWER"
chmod 644 "$T/vmgate.conf"
start_vmgate "$T/vmgate.conf"
CTL=$T/control

as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups "$@"; }
# vm USER NAME ARGS...: `vmgate vm` as USER; output in $T/vm.NAME.{out,err}, status in RC
vm() {
    local u=$1 name=$2
    shift 2
    as "$u" "$VMGATE" vm "$@" >"$T/vm.$name.out" 2>"$T/vm.$name.err"
    RC=$?
    say "vm $* as $u: exit $RC: $(head -c 300 "$T/vm.$name.out" "$T/vm.$name.err" | tr '\n' ' ')"
}
# the run state as the watcher on the other monitor saw it last (it polls
# query-status; QEMU serves one client per monitor)
state() { sleep 0.4; sed -n 's/^{"status": "\([a-z-]*\)"}$/\1/p' "$EVENTS" | tail -n 1; }
has() { grep -q -- "$2" "$T/vm.$1.$3"; }   # NAME TEXT out|err

checklist
# a session, so that status shows who is connected
"$PY" "$TOOLS/xvp.py" session 127.0.0.1 "$P0" "$CA" alice 'alice pw 94' enc:none wait:8 \
    >"$T/s.alice" 2>&1 &
track $!
wait_for 10 log_has 'user=alice .*session started' || fail "alice's session did not start"

# the power user (by power_groups: the user's own primary group)
vm "$POWER" st1 --socket "$CTL" dev0 status
check "power user: status exit 0" 0 "$RC"
has st1 "^dev0: running$" out && ok "status says running" || bad "status: $(cat "$T/vm.st1.out")"
has st1 "^sessions: 1$" out && ok "status counts the session" || bad "no session count"
has st1 "^  alice via tls from 127.0.0.1 since " out && ok "status names who is connected" ||
    bad "status does not list alice"
vm "$POWER" pause -c "$T/vmgate.conf" dev0 pause
check "pause: exit 0" 0 "$RC"
check "pause: query-status on the other monitor" paused "$(state)"
vm "$POWER" st2 --socket "$CTL" dev0 status
has st2 "^dev0: paused$" out && ok "status says paused" || bad "status: $(cat "$T/vm.st2.out")"
vm "$POWER" resume --socket "$CTL" dev0 resume
check "resume: exit 0" 0 "$RC"
check "resume: query-status on the other monitor" running "$(state)"
vm "$POWER" reset --socket "$CTL" dev0 reset
check "reset: exit 0" 0 "$RC"
vm "$POWER" shutdown --socket "$CTL" dev0 shutdown
check "shutdown: exit 0" 0 "$RC"
wait_for 5 grep -q POWERDOWN "$EVENTS" || true
check "reset -> RESET event (host-qmp)" 1 "$(grep -c host-qmp-system-reset "$EVENTS")"
check "shutdown -> POWERDOWN event" 1 "$(grep -c '"POWERDOWN"' "$EVENTS")"

# the README's `ssh host vmgate vm dev0 reset`, through a private sshd: the
# control socket sees the ssh login's uid
start_sshd "$POWER" "$VIEWER"
sshvm() {   # USER NAME ARGS...: `vmgate vm ARGS` over ssh as USER; $T/vm.NAME.{out,err}, RC
    local u=$1 name=$2
    shift 2
    ssh_as "$u" "$VMGATE" vm -c "$T/vmgate.conf" "$@" </dev/null >"$T/vm.$name.out" 2>"$T/vm.$name.err"
    RC=$?
    say "ssh: vm $* as $u: exit $RC: $(head -c 300 "$T/vm.$name.out" "$T/vm.$name.err" | tr '\n' ' ')"
}
resets() { grep -c host-qmp-system-reset "$EVENTS"; }
sshvm "$POWER" sshreset dev0 reset
check "ssh power user: reset exit 0" 0 "$RC"
has sshreset "^dev0: reset$" out && ok "ssh reset: says reset" || bad "ssh reset: $(cat "$T/vm.sshreset.out")"
wait_for 5 eval '[ "$(resets)" -ge 2 ]'
check "ssh reset -> a second RESET event (host-qmp)" 2 "$(resets)"
sshvm "$VIEWER" sshvreset dev0 reset
check "ssh non-power user: reset refused, exit 1" 1 "$RC"
has sshvreset "user $VIEWER may not control the power of vm dev0 (not in its power_users/power_groups)" err &&
    ok "ssh refusal names the user and power_users/power_groups" || bad "ssh refusal: $(cat "$T/vm.sshvreset.err")"
sleep 1
check "ssh refused reset: no RESET event" 2 "$(resets)"
vm "$POWER" reboot --socket "$CTL" dev0 reboot
check "reboot without qga: exit 3" 3 "$RC"
has reboot "no qga configured" err && ok "reboot: says no qga configured" ||
    bad "reboot: $(cat "$T/vm.reboot.err")"

# a user who may open the VM but not power it
vm "$VIEWER" vst --socket "$CTL" dev0 status
check "viewer: status exit 0" 0 "$RC"
vm "$VIEWER" vpause --socket "$CTL" dev0 pause
check "viewer: pause refused, exit 1" 1 "$RC"
has vpause "power_users/power_groups" err && ok "refusal names power_users/power_groups" ||
    bad "refusal: $(cat "$T/vm.vpause.err")"
has vpause "user $VIEWER may not control the power of vm dev0" err && ok "refusal names the user" ||
    bad "refusal does not name the user"
check "viewer: VM still running" running "$(state)"
vm "$VIEWER" vreset --socket "$CTL" dev0 reset
check "viewer: reset refused, exit 1" 1 "$RC"

# a user with no right at all
vm "$NOBODY" nst --socket "$CTL" dev0 status
check "stranger: status refused, exit 1" 1 "$RC"
has nst "may not open vm dev0 (not in its users/groups)" err && ok "refusal names users/groups" ||
    bad "refusal: $(cat "$T/vm.nst.err")"
vm "$NOBODY" nres --socket "$CTL" dev0 resume
check "stranger: resume refused, exit 1" 1 "$RC"

# VMs that cannot be reached, unknown VMs, usage
vm "$POWER" gone --socket "$CTL" dev1 status
check "monitor gone: exit 3" 3 "$RC"
has gone "gone.qmp" err && ok "monitor gone: says which socket" || bad "gone: $(cat "$T/vm.gone.err")"
vm "$POWER" noqmp --socket "$CTL" dev2 pause
check "no qmp: exit 3" 3 "$RC"
has noqmp "no qmp configured" err && ok "no qmp: says so" || bad "noqmp: $(cat "$T/vm.noqmp.err")"
vm "$POWER" unknown --socket "$CTL" nope status
check "unknown VM: exit 1" 1 "$RC"
vm "$POWER" usage1 --socket "$CTL" dev0 explode
check "unknown action: exit 2" 2 "$RC"
vm "$POWER" usage2 --socket "$CTL" dev0
check "no action: exit 2" 2 "$RC"
vm "$POWER" noctl --socket "$T/nothing-here" dev0 status
check "no control socket: exit 1" 1 "$RC"

# garbage on the control socket (as the stranger: `vm` needs no admin_group)
raw() {   # NAME: stdin is the request, the reply goes to $T/raw.NAME
    as "$NOBODY" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
s.sendall(sys.stdin.buffer.read())
s.shutdown(socket.SHUT_WR)
d = b""
while True:
    try:
        b = s.recv(65536)
    except ConnectionResetError:
        break
    if not b:
        break
    d += b
sys.stdout.write(d.decode("latin-1"))' "$CTL" >"$T/raw.$1" 2>&1
    say "raw $1: $(head -c 200 "$T/raw.$1" | tr '\n' ' ')"
}
printf 'vmgate1 vm name=dev0\n' | raw noaction
grep -q '^error usage: vm name=VM action=' "$T/raw.noaction" && ok "garbage: no action" || bad "noaction"
printf 'vmgate1 vm name=dev0 action=reset extra=1\n' | raw extra
grep -q '^error usage: vm: unknown argument extra' "$T/raw.extra" && ok "garbage: unknown key" || bad "extra"
printf 'vmgate1 vm name=%%00 action=status\n' | raw nul
grep -q '^error usage: ' "$T/raw.nul" && ok "garbage: %%00" || bad "nul"
printf 'vmgate1 vm name=dev0  action=status\n' | raw spaces
grep -q '^error usage: ' "$T/raw.spaces" && ok "garbage: double space" || bad "spaces"
printf 'vmgate1 vm \xff\xfe\x01\n' | raw binary
grep -q '^error usage: ' "$T/raw.binary" && ok "garbage: binary" || bad "binary"
head -c 6000 /dev/zero | tr '\0' a | sed 's/^/vmgate1 vm name=/' | raw oversize
grep -q '^error request longer than 4095 bytes' "$T/raw.oversize" && ok "garbage: over-long request" ||
    bad "oversize"
printf 'vmgate1 vm name=dev0 action=status' | raw nonl
grep -q '^error request without a newline' "$T/raw.nonl" && ok "garbage: no newline" || bad "nonl"
printf 'vmgate1 vm name=dev0 action=reset\n' | raw rawreset
grep -q '^error refused: user .* may not control the power of vm dev0' "$T/raw.rawreset" &&
    ok "raw request: the helper still decides (refused)" || bad "rawreset"
vm "$POWER" after --socket "$CTL" dev0 status
check "after the garbage: served" 0 "$RC"
vmgate_alive && ok "vmgate alive" || bad "vmgate died"

# the audit trail: one power event per action, via control, with the result
cnt() { grep '"event":"power"' "$AUDIT" | grep '"via":"control"' | grep -c "\"action\":\"$1\",\"result\":\"$2\"" || true; }
check "audit: pause ok" 1 "$(cnt pause ok)"
check "audit: resume ok" 1 "$(cnt resume ok)"
check "audit: pause refused" 1 "$(cnt pause refused)"
check "audit: reboot unavailable" 1 "$(cnt reboot unavailable)"
check "audit: reset ok (local and over ssh)" 2 "$(cnt reset ok)"
grep '"event":"power"' "$AUDIT" | grep '"action":"pause","result":"ok"' | grep -q "\"user\":\"$POWER\"" &&
    ok "audit: names the user" || bad "audit does not name the user"
checks_done
