#!/bin/bash
# t84-control: the control socket.  A TigerVNC session shows in `vmgate
# status --json` (user, VM, source, via, bytes both ways; the VM with state
# unknown and one session) and in the text table; `vmgate kick --user`
# ends it (the viewer loses the session) and the audit trail records the
# kick (by root, the reason) and the session-close; a throwaway user not in
# admin_group is refused with a message naming the group; a member of it is
# served; garbage, an over-long request and one without a newline each get
# a clear error and the close, and vmgate serves the next request.
# Then (issue 15) three held sessions, two on VM a and one on VM b
# (tests/tools/holdrfb.py): `kick --vm a` ends both of a's and b's goes on
# relaying; `kick ID` with b's id from `status --json` ends that one; the
# audit trail has one `kick` event per kicked session, with its VM.
. "$(dirname "$0")/lib.sh"
need_vmgate
need_root "useradd/groupadd for the authorization test"

make_certs
make_passwd alice 'alice pw 81'
start_qemu a unix
start_qemu b unix
PORT=$(free_port)
PORTB=$(free_port)
SUF=$$
GRP=vmgt$SUF
groupadd "$GRP"
at_cleanup "groupdel $GRP 2>/dev/null || true"
useradd -M -N -s /usr/sbin/nologin "vmgo$SUF"
at_cleanup "userdel vmgo$SUF 2>/dev/null || true"
useradd -M -N -G "$GRP" -s /usr/sbin/nologin "vmga$SUF"
at_cleanup "userdel vmga$SUF 2>/dev/null || true"
AUDIT=$T/audit.jsonl
write_config "$T/vmgate.conf" audit="$AUDIT" admin_group="$GRP" -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users=alice \
    vm b vnc="${QEMU_BACKEND[b]}" vnc_port="$PORTB" users=alice
start_vmgate "$T/vmgate.conf"
CTL=$T/control
[ -S "$CTL" ] || fail "no control socket at $CTL"

vncviewer_start v1 alice 'alice pw 81' "$PORT"
expect_viewer_connected v1
sleep 1
"$VMGATE" status --json -c "$T/vmgate.conf" >"$T/status.json" || fail "vmgate status --json failed"
"$PY" - "$T/status.json" <<'PYEOF' || { cat "$T/status.json"; fail "status --json is not what it should be"; }
import json, re, sys
st = json.load(open(sys.argv[1]))
ss = st["sessions"]
assert len(ss) == 1, ss
s = ss[0]
assert s["user"] == "alice" and s["vm"] == "a" and s["source"] == "127.0.0.1" and s["via"] == "tls", s
assert s["id"] > 0 and s["bytes_from_vm"] > 1000 and s["bytes_to_vm"] > 10, s
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["since"]), s
assert st["vms"] == [{"name": "a", "state": "unknown", "sessions": 1},
                     {"name": "b", "state": "unknown", "sessions": 0}], st["vms"]
PYEOF
"$VMGATE" status --socket "$CTL" >"$T/status.txt" || fail "vmgate status failed"
grep -qE '^[0-9]+ +a +alice +127\.0\.0\.1 +tls ' "$T/status.txt" || { cat "$T/status.txt"; fail "status table has no alice row"; }
say "status: $(sed -n 2p "$T/status.txt")"

# authorization: a non-member is refused, naming the group; a member is served
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups "$@"; }
if as "vmgo$SUF" "$VMGATE" status --socket "$CTL" >"$T/o.out" 2>"$T/o.err"; then
    fail "a user outside admin_group got the status: $(cat "$T/o.out")"
fi
grep -q "permission denied: vmgo$SUF is not root and not a member of group $GRP" "$T/o.err" ||
    { cat "$T/o.err"; fail "the refusal does not name the user and the group"; }
as "vmgo$SUF" "$VMGATE" kick --user alice --socket "$CTL" 2>/dev/null && fail "a non-admin could kick"
as "vmga$SUF" "$VMGATE" status --json --socket "$CTL" >"$T/a.out" 2>&1 ||
    { cat "$T/a.out"; fail "a member of admin_group was refused"; }
grep -q '"user":"alice"' "$T/a.out" || fail "the admin member's status lacks the session"
viewer_alive v1 || fail "the refused kick ended the session anyway"

# garbage, oversize, no newline: a clear error each, then the close
ctl_raw() {   # PYTHON-BYTES-EXPR: send, half-close unless told, print the answer
    "$PY" - "$CTL" "$1" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(8)
s.connect(sys.argv[1])
data = eval(sys.argv[2])
try:
    s.sendall(data)
    if not data.endswith(b"\n") and len(data) < 4096:
        s.shutdown(socket.SHUT_WR)
except OSError:
    pass
out = b""
while True:
    try:
        d = s.recv(4096)
    except (socket.timeout, ConnectionResetError):
        break
    if not d:
        break
    out += d
sys.stdout.write(out.decode("latin-1"))
PYEOF
}
r=$(ctl_raw 'b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"'); [[ $r == "error not a vmgate control request"* ]] || fail "garbage: got '$r'"
r=$(ctl_raw 'b"\x00\xff" * 3000'); [[ $r == "error request longer than 4095 bytes"* ]] || fail "oversize: got '$r'"
r=$(ctl_raw 'b"vmgate1 status"'); [[ $r == "error request without a newline"* ]] || fail "no newline: got '$r'"
r=$(ctl_raw 'b"vmgate1 reboot-host\n"'); [[ $r == "error unknown request reboot-host"* ]] || fail "unknown verb: got '$r'"
r=$(ctl_raw 'b"vmgate1 kick\n"'); [[ $r == "error kick: say which sessions"* ]] || fail "kick without selector: got '$r'"
"$VMGATE" kick 999999 --socket "$CTL" 2>"$T/k.err" && fail "kicking a missing id succeeded"
grep -q 'no such session' "$T/k.err" || fail "kick of a missing id: $(cat "$T/k.err")"
vmgate_alive || fail "vmgate died on control garbage"
viewer_alive v1 || fail "the session ended during the garbage"

# kick
"$VMGATE" kick --user alice --reason 'maintenance "window"' --socket "$CTL" >"$T/kick.out" ||
    fail "vmgate kick failed"
grep -qx 'kicked 1 session(s)' "$T/kick.out" || fail "kick said: $(cat "$T/kick.out")"
wait_for 10 _not_alive "${VV_PID[v1]}" || fail "the viewer still runs after the kick"
expect_log 'conn=[0-9]+ vm=a user=alice from=127\.0\.0\.1: session ended: kicked by root: maintenance \\"window\\"'
"$PY" - "$AUDIT" <<'PYEOF' || { cat "$AUDIT"; fail "the audit trail lacks the kick"; }
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
k = [e for e in ev if e["event"] == "kick"]
assert len(k) == 1 and k[0]["by"] == "root" and k[0]["reason"] == 'maintenance "window"' and k[0]["user"] == "alice", k
c = [e for e in ev if e["event"] == "session-close"]
assert len(c) == 1 and c[0]["reason"].startswith("kicked by root") and c[0]["conn"] == k[0]["conn"], c
PYEOF
"$VMGATE" status --json --socket "$CTL" | grep -q '"sessions":\[\]' || fail "the kicked session is still listed"
say "kick --user: the viewer's session ended, audited"

# kick --vm and kick ID (issue 15): held sessions that keep asking for updates
hold() {   # NAME PORT: a held session (holdrfb.py) in the background; pid in HOLD[NAME]
    "$PY" "$TOOLS/holdrfb.py" 127.0.0.1 "$2" "$CA" alice 'alice pw 81' >"$T/hold.$1" 2>&1 &
    HOLD[$1]=$!
    track "${HOLD[$1]}"
    add_log "$T/hold.$1"
}
rx() { sed -n 's/^rx=//p' "$T/hold.$1" | tail -n 1; }
relaying() {   # NAME: rx grows within 2 s
    local a b
    a=$(rx "$1"); a=${a:-0}
    sleep 1
    b=$(rx "$1"); b=${b:-0}
    [ "$b" -gt "$a" ]
}
declare -A HOLD=()
hold a1 "$PORT"; hold a2 "$PORT"; hold b1 "$PORTB"
for h in a1 a2 b1; do
    wait_for 10 grep -q '^rx=' "$T/hold.$h" || fail "held session $h did not start: $(cat "$T/hold.$h")"
done
sessions_of() {   # VM: number of live sessions of VM in status --json
    "$VMGATE" status --json --socket "$CTL" | "$PY" -c 'import json, sys
print(sum(1 for s in json.load(sys.stdin)["sessions"] if s["vm"] == sys.argv[1]))' "$1"
}
[ "$(sessions_of a)" = 2 ] && [ "$(sessions_of b)" = 1 ] ||
    fail "status lists $(sessions_of a) session(s) of a and $(sessions_of b) of b, expected 2 and 1"
"$VMGATE" kick --vm a --reason 'vm a only' --socket "$CTL" >"$T/kickvm.out" ||
    fail "vmgate kick --vm a failed"
grep -qx 'kicked 2 session(s)' "$T/kickvm.out" || fail "kick --vm a said: $(cat "$T/kickvm.out")"
for h in a1 a2; do
    wait_for 10 _not_alive "${HOLD[$h]}" || fail "session $h on vm a still runs after kick --vm a"
    grep -qx 'closed=yes' "$T/hold.$h" || fail "session $h: no close seen: $(tail -n 3 "$T/hold.$h")"
done
kill -0 "${HOLD[b1]}" 2>/dev/null || fail "kick --vm a ended the session on vm b"
relaying b1 || fail "the session on vm b stopped relaying after kick --vm a"
[ "$(sessions_of a)" = 0 ] && [ "$(sessions_of b)" = 1 ] ||
    fail "after kick --vm a: $(sessions_of a) session(s) of a, $(sessions_of b) of b, expected 0 and 1"
say "kick --vm a: both sessions of a ended, the one on b goes on relaying"
ID=$("$VMGATE" status --json --socket "$CTL" | "$PY" -c 'import json, sys
print(*[s["id"] for s in json.load(sys.stdin)["sessions"] if s["vm"] == "b"])')
[[ $ID =~ ^[0-9]+$ ]] || fail "status --json: no single id for vm b's session: '$ID'"
hold a3 "$PORT"
wait_for 10 grep -q '^rx=' "$T/hold.a3" || fail "held session a3 did not start"
"$VMGATE" kick "$ID" --socket "$CTL" >"$T/kickid.out" || fail "vmgate kick $ID failed"
grep -qx 'kicked 1 session(s)' "$T/kickid.out" || fail "kick $ID said: $(cat "$T/kickid.out")"
wait_for 10 _not_alive "${HOLD[b1]}" || fail "session $ID (vm b) still runs after kick $ID"
relaying a3 || fail "kick $ID ended another session too (a3 stopped relaying)"
say "kick $ID: that session ended, another one (vm a) goes on"
"$PY" - "$AUDIT" "$ID" <<'PYEOF' || { cat "$AUDIT"; fail "the audit trail lacks the kicks by vm and by id"; }
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
k = [e for e in ev if e["event"] == "kick"]
assert len(k) == 4, k
byvm = [e for e in k if e["reason"] == "vm a only"]
assert len(byvm) == 2 and all(e["vm"] == "a" and e["by"] == "root" and e["via"] == "tls" for e in byvm), byvm
byid = [e for e in k if e["conn"] == int(sys.argv[2])]
assert len(byid) == 1 and byid[0]["vm"] == "b" and byid[0]["by"] == "root", byid
closed = {e["conn"] for e in ev if e["event"] == "session-close"}
assert all(e["conn"] in closed for e in k), (k, closed)
PYEOF
say "audit: a kick event for each of a's two sessions and for session $ID, each then closed"
stop_vmgate
