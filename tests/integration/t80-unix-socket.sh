#!/bin/bash
# t80-unix-socket: socket_dir/NAME.vnc, authorized by the connecting uid.
#   A VM with no vnc_port at all, reachable only through $T/run/a.vnc (0666).
#   TigerVNC (security None) run as an allowed throwaway user on the socket
#   path shows QEMU's screen; as a user outside the ACL it is refused with
#   "user NAME may not open VM a" in its log; the log says via=unix + user.
#   Through a private sshd: ssh -L PORT:$T/run/a.vnc as each user, then
#   vncviewer localhost::PORT: the same answers (the uid is sshd's child's,
#   i.e. the ssh user's).
#   Bad input on the socket: garbage (closed at once), a silent client
#   (closed at first_byte_timeout), silent after its version (login_timeout).
#   RFB 3.3/3.7/3.8 handshakes (tests/tools/localrfb.py); processes = 2
#   (the listener shared, the stale socket replaced).  vmgate check
#   refuses a socket_dir that holds QEMU's own socket.
#   Issue 12: the clipboard policy on a socket session (an Xvnc VM x with
#   clipboard = to-vm; TigerVNC on x.vnc as the allowed user): its text
#   reaches the VM, logged and audited as allowed with via=unix, the VM's
#   never reaches the viewer; the audit has login and session-open with
#   "via":"unix" and the user.  The README's socket-to-socket recipe (ssh
#   -N -L LOCALSOCK:a.vnc, vncviewer LOCALSOCK) shows QEMU's screen.  200
#   silent connections of one uid on a.vnc are capped per uid
#   (max_unauth_per_source = 8, the rest closed at once) while the allowed
#   user still gets ServerInit.
. "$(dirname "$0")/lib.sh"
need_vmgate
need_root "throwaway users and sshd"

make_certs
make_passwd nobody-here 'unused'
make_user ALLOWED
make_user DENIED
start_qemu a unix
# the clipboard VM: TigerVNC's Xvnc, a real X clipboard (t50, t52)
CLIP=
XVM=()
if command -v Xvnc >/dev/null && command -v xclip >/dev/null; then
    CLIP=1
    start_xvnc x unix
    XVM=(vm x vnc="${XVNC_BACKEND[x]}" users="$ALLOWED" clipboard=to-vm)
fi
AUDIT=$T/audit.jsonl
write_config "$T/a.conf" first_byte_timeout=2s login_timeout=4s audit="$AUDIT" -- \
    vm a vnc="${QEMU_BACKEND[a]}" users="$ALLOWED" "${XVM[@]}"
# socket_dir holding QEMU's own socket ($T/a.vnc) is refused by vmgate check
write_config "$T/bad.conf" socket_dir="$T" -- vm a vnc="${QEMU_BACKEND[a]}" users="$ALLOWED"
if "$VMGATE" check -c "$T/bad.conf" >"$T/check.out" 2>&1; then
    cat "$T/check.out"; fail "vmgate check accepted socket_dir = the directory of QEMU's socket"
fi
grep -q "vnc socket $T/a.vnc is inside socket_dir $T" "$T/check.out" ||
    { cat "$T/check.out"; fail "vmgate check: no clear message for socket_dir"; }
start_vmgate "$T/a.conf" 1
SOCK=$T/run/a.vnc
expect_log "listening for vm a \(vnc\) on unix:$SOCK"
[ -S "$SOCK" ] || fail "$SOCK is not a socket"
[ "$(stat -c %a "$SOCK")" = 666 ] || fail "$SOCK has mode $(stat -c %a "$SOCK"), expected 666"
[ "$(stat -c %a "$T/run")" = 755 ] || fail "$T/run has mode $(stat -c %a "$T/run"), expected 755"
wait_guest_stable a

raw() {   # OUTFILE [runuser USER] ARGS...: localrfb, output to $T/raw.OUTFILE
    local out=$T/raw.$1
    shift
    "$@" >"$out" 2>&1 || true
    add_log "$out"
    RAW=$out
}
has() { grep -Eqx -- "$1" "$RAW" || { cat "$RAW"; fail "$CASE: expected a line '$1'"; }; }
val() { sed -n "s/^$1=//p" "$RAW" | tail -n 1; }
between() { "$PY" -c "import sys; sys.exit(0 if $2 <= float('$1') <= $3 else 1)"; }

# --- handshakes, each RFB version, as each user
for v in 003.008 003.007 003.003; do
    CASE="allowed $v"
    raw ok.$v runuser -u "$ALLOWED" -- "$PY" "$TOOLS/localrfb.py" login "unix:$SOCK" "$v"
    has 'result=ok'; has 'width=720'; has 'name=QEMU \(a\)'
    CASE="denied $v"
    raw no.$v runuser -u "$DENIED" -- "$PY" "$TOOLS/localrfb.py" login "unix:$SOCK" "$v"
    has 'result=refused'; has "reason=user $DENIED may not open VM a"
done
say "RFB 3.8/3.7/3.3: $ALLOWED gets ServerInit, $DENIED is refused with the reason"
expect_log "conn=[0-9]+ vm=a user=$ALLOWED from=uid:$(id -u "$ALLOWED") via=unix: session started"
expect_log "vm=a from=uid:$(id -u "$DENIED") via=unix: login failed for user \"$DENIED\""

# --- TigerVNC on the socket path
vncviewer_none good "$SOCK" "$ALLOWED"
expect_viewer_connected good
expect_viewer_shows good a
stop_viewer good
vncviewer_none bad "$SOCK" "$DENIED"
r=$(vncviewer_result bad)
[ "$r" != connected ] || fail "viewer of $DENIED got in"
wait_for 10 viewer_log_has bad "user $DENIED may not open VM a" ||
    fail "viewer of $DENIED: no reason in its log: $r"
say "TigerVNC as $DENIED: $(grep -E "may not open" "${VV_LOG[bad]}" | tail -n 1)"

# --- the clipboard policy on a socket session (clipboard = to-vm), audited
if [ -n "$CLIP" ]; then
    UA=$(id -u "$ALLOWED")
    vncviewer_none clip "$T/run/x.vnc" "$ALLOWED"
    expect_viewer_connected clip
    VD=${XV_DISPLAY[clip]}
    XD=${XVNC_DISPLAY[x]}
    "$PY" "$TOOLS/clip_focus.py" "$VD" TigerVNC >"$T/focus.out" 2>&1 ||
        { cat "$T/focus.out"; fail "could not give the viewer window keyboard focus"; }
    printf 'socket viewer -> VM: Grüße ✓ %s' "$RANDOM" >"$T/clip.tovm"
    xclip_set "$VD" "$T/clip.tovm"
    expect_clip "$XD" "$T/clip.tovm" 10 "socket viewer -> VM (clipboard = to-vm)"
    CSHA=$(sha256sum <"$T/clip.tovm" | cut -d' ' -f1)
    CN=$(wc -c <"$T/clip.tovm")
    expect_log "vm=x user=$ALLOWED from=uid:$UA via=unix: clipboard dir=to-vm bytes=$CN type=utf8-text sha256=$CSHA result=allowed"
    printf 'VM -> socket viewer, blocked %s' "$RANDOM" >"$T/clip.fromvm"
    xclip_set "$XD" "$T/clip.fromvm"
    sleep 2
    XCLIP_TIMEOUT=2 xclip_is "$VD" "$T/clip.fromvm" &&
        fail "VM -> socket viewer: the text arrived, clipboard = to-vm should block it"
    log_has "vm=x .*: clipboard dir=from-vm .*result=allowed" &&
        fail "VM -> socket viewer: logged as allowed under clipboard = to-vm"
    expect_log "vm=x user=$ALLOWED from=uid:$UA via=unix: clipboard-offer dir=from-vm result=dropped reason=\"policy: clipboard = to-vm\""
    viewer_alive clip || fail "the socket viewer's session ended after the blocked transfer"
    stop_viewer clip
    "$PY" - "$AUDIT" "$ALLOWED" "$UA" "$CSHA" "$CN" <<'PYEOF' || { cat "$AUDIT"; fail "audit trail of the socket session is not right"; }
import json, sys
user, uid, sha, n = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ev = [json.loads(l) for l in open(sys.argv[1])]
x = [e for e in ev if e["vm"] == "x"]
login = [e for e in x if e["event"] == "login"]
assert len(login) == 1 and login[0]["result"] == "ok" and login[0]["user"] == user \
    and login[0]["via"] == "unix" and login[0]["source"] == "uid:" + uid, login
op = [e for e in x if e["event"] == "session-open"]
assert len(op) == 1 and op[0]["user"] == user and op[0]["via"] == "unix" \
    and op[0]["conn"] == login[0]["conn"], op
clip = [e for e in x if e["event"] == "clipboard"]
tovm = [e for e in clip if e["dir"] == "to-vm" and e["result"] == "allowed"]
assert tovm and all(e["sha256"] == sha and e["bytes"] == n and e["user"] == user
                    and e["via"] == "unix" and e["conn"] == op[0]["conn"] for e in tovm), clip
assert not [e for e in clip if e["dir"] == "from-vm" and e["result"] == "allowed"], clip
# the VM's text was offered (Extended Clipboard notify) and refused by the policy
assert [e for e in clip if e["dir"] == "from-vm" and e["result"] == "dropped"
        and e["reason"] == "policy: clipboard = to-vm"], clip
print("audit ok: %d clipboard event(s): %s" % (len(clip), [(e["dir"], e["result"]) for e in clip]))
PYEOF
    say "clipboard = to-vm on x.vnc: viewer -> VM passed (log + audit via unix), VM -> viewer blocked"
else
    say "Xvnc or xclip not installed: the socket session's clipboard check skipped"
fi

# --- through sshd: ssh -L PORT:SOCKET, vncviewer localhost::PORT
start_sshd "$ALLOWED" "$DENIED"
ssh_fwd() {   # USER LPORT: a background ssh -N -L LPORT:$SOCK
    ssh_as "$1" -N -L "127.0.0.1:$2:$SOCK" >"$T/ssh.$1.log" 2>&1 </dev/null &
    track $!
    add_log "$T/ssh.$1.log"
    wait_for 15 port_listening 127.0.0.1 "$2" || fail "ssh -L for $1 did not come up"
}
PA=$(free_port); ssh_fwd "$ALLOWED" "$PA"
PD=$(free_port); ssh_fwd "$DENIED" "$PD"
vncviewer_none sshgood "localhost::$PA"
expect_viewer_connected sshgood
expect_viewer_shows sshgood a
stop_viewer sshgood
vncviewer_none sshbad "localhost::$PD"
r=$(vncviewer_result sshbad)
[ "$r" != connected ] || fail "viewer through $DENIED's ssh got in"
wait_for 10 viewer_log_has sshbad "user $DENIED may not open VM a" ||
    fail "viewer through $DENIED's ssh: no reason in its log: $r"
say "through ssh -L: $ALLOWED sees the screen, $DENIED is refused"

# --- the README's socket-to-socket recipe: ssh -N -L LOCALSOCK:a.vnc, then
# vncviewer LOCALSOCK (TigerVNC takes a name with '/' as a socket)
mkdir -p "$T/fwd"
ssh_as "$ALLOWED" -N -L "$T/fwd/a.sock:$SOCK" >"$T/ssh.sock.log" 2>&1 </dev/null &
track $!
add_log "$T/ssh.sock.log"
wait_for 15 test -S "$T/fwd/a.sock" || fail "ssh -L $T/fwd/a.sock:$SOCK did not come up"
nsess() { grep -cE "vm=a user=$ALLOWED from=uid:$(id -u "$ALLOWED") via=unix: session started" "$VMGATE_LOG" || true; }
n0=$(nsess)
vncviewer_none sshsock "$T/fwd/a.sock"
expect_viewer_connected sshsock
expect_viewer_shows sshsock a
stop_viewer sshsock
[ "$(nsess)" -gt "$n0" ] || fail "socket-to-socket: no session of $ALLOWED by uid in vmgate's log"
say "ssh -L LOCALSOCK:a.vnc + vncviewer LOCALSOCK: QEMU's screen, as $ALLOWED by uid"

# --- bad input on the socket; vmgate stays up and serves
CASE=garbage
raw garbage "$PY" "$TOOLS/localrfb.py" garbage "unix:$SOCK"
has 'closed=yes'
between "$(val elapsed)" 0 1.5 || fail "garbage: closed after $(val elapsed)s, expected at once"
CASE=silent
raw silent "$PY" "$TOOLS/localrfb.py" silent "unix:$SOCK"
has 'closed=yes'
between "$(val elapsed)" 1.5 3.5 || fail "silent: closed after $(val elapsed)s, expected ~2s"
CASE="silent after version"
raw silentv runuser -u "$ALLOWED" -- "$PY" "$TOOLS/localrfb.py" silent "unix:$SOCK" version
has 'closed=yes'
between "$(val elapsed)" 3 5.5 || fail "silent after version: closed after $(val elapsed)s, expected ~4s"
expect_log "login timeout"
vmgate_alive || fail "vmgate died"
CASE="after bad input"
raw after runuser -u "$ALLOWED" -- "$PY" "$TOOLS/localrfb.py" login "unix:$SOCK"
has 'result=ok'
say "garbage closed at once, silent clients at first_byte_timeout / login_timeout"
stop_vmgate

# --- processes = 2: both network processes serve the shared socket (a stale
# socket from the run above is replaced)
write_config "$T/p2.conf" processes=2 -- vm a vnc="${QEMU_BACKEND[a]}" users="$ALLOWED"
start_vmgate "$T/p2.conf" 1
for i in 1 2 3 4; do
    CASE="processes=2 #$i"
    raw p2.$i runuser -u "$ALLOWED" -- "$PY" "$TOOLS/localrfb.py" login "unix:$SOCK"
    has 'result=ok'
    raw p2n.$i runuser -u "$DENIED" -- "$PY" "$TOOLS/localrfb.py" login "unix:$SOCK"
    has "reason=user $DENIED may not open VM a"
done
say "processes = 2: the socket is served, allowed and refused as before"
stop_vmgate

# --- the per-uid cap on a.vnc: 200 silent connections of one uid, at most
# max_unauth_per_source (8) held, the rest closed at once; meanwhile the
# allowed user still gets ServerInit
write_config "$T/cap.conf" max_unauth_per_source=8 first_byte_timeout=10s -- \
    vm a vnc="${QEMU_BACKEND[a]}" users="$ALLOWED"
start_vmgate "$T/cap.conf" 1
runuser -u "$DENIED" -- "$PY" "$TOOLS/localrfb.py" flood "unix:$SOCK" 200 3 >"$T/flood.out" 2>&1 &
FPID=$!
track $FPID
add_log "$T/flood.out"
sleep 1
CASE="login during the flood"
raw during runuser -u "$ALLOWED" -- "$PY" "$TOOLS/localrfb.py" login "unix:$SOCK"
has 'result=ok'; has 'width=720'
wait $FPID || true
CASE=flood
RAW=$T/flood.out
capped=$(val capped); held=$(val held)
[ -n "$capped" ] && [ "$capped" -ge 190 ] || { cat "$RAW"; fail "200 connections of one uid: only ${capped:-?} capped"; }
[ "$held" -le 8 ] || { cat "$RAW"; fail "$held connections of one uid held a slot (max_unauth_per_source = 8)"; }
expect_log "refused connection from uid:$(id -u "$DENIED") via=unix: too many unauthenticated connections"
say "200 silent connections of $DENIED on a.vnc: $capped closed at once, $held held; $ALLOWED got ServerInit meanwhile"
stop_vmgate
