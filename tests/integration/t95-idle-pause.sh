#!/bin/bash
# t95-idle-pause: wake on connect (idle_pause = 2s) on a real QEMU with three
# monitors: vmgate's (qmp = PATH; the console is a unix socket, so the
# viewer's ServerInit does not wait behind vmgate's QMP commands), the test's
# commands (.ctl) and an event watcher (.ev, tests/tools/qmpwatch.py).
#  1. Nobody opened the VM: it is paused 2 s after vmgate started (STOP
#     event, not earlier than ~2 s), query-status says paused, `vmgate
#     status --json` and `vmgate vm a status` (text) say "paused by vmgate
#     (idle since ...)", the log names
#     the reason, the audit trail has a `power` event (pause, by vmgate).
#  2. A login resumes it before ServerInit reaches the client (RESUME event
#     time < ServerInit receipt), the session gets a frame, the audit trail
#     has the resume; the VM has a (fake) guest agent (qga =): it gets
#     guest-set-time with the host's clock after the wake, and the log says so.
#  3. The viewer leaves: paused again ~2 s after it left.  A login on the
#     local socket (socket_dir, by uid) wakes it too.
#  4. The test resumes it, a viewer connects, and the test pauses it through
#     its own monitor while the session runs (someone else's pause): after
#     the viewer leaves vmgate leaves it alone (status not running), and a
#     later login does not resume it (no RESUME event, still paused) but the
#     session still gets its frame.
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'alice pw 95'
start_qemu a unix -qmp "unix:$T/a.qmp,server=on,wait=off" -qmp "unix:$T/a.ev,server=on,wait=off"
EV=$T/a.events
: >"$EV"
"$PY" "$TOOLS/qmpwatch.py" watch "$T/a.ev" "$EV" &
track $!
# a fake guest agent (qga =): a wake corrects the guest clock (guest-set-time)
QGA_LOG=$T/qga.jsonl
: >"$QGA_LOG"
"$PY" "$TOOLS/xvp.py" fakeqga "$T/a.qga" "$QGA_LOG" &
track $!
wait_for 10 test -S "$T/a.qga" || fail "fake guest agent did not start"
PORT=$(free_port)
AUDIT=$T/audit.jsonl
write_config "$T/vmgate.conf" audit="$AUDIT" -- \
    vm a vnc="${QEMU_BACKEND[a]}" qmp="$T/a.qmp" vnc_port="$PORT" users="alice root" idle_pause=2s \
        qga="unix:$T/a.qga"
sleep 0.5
T0=$("$PY" -c 'import time; print("%.6f" % time.time())')
start_vmgate "$T/vmgate.conf"

# status EVENT: the epoch time of the last EVENT line, or nothing
ev_time() { awk -v e="$1" '$2 == e { t = $1 } END { if (t != "") print t }' "$EV"; }
ev_count() { awk -v e="$1" '$2 == e { n++ } END { print n + 0 }' "$EV"; }
has_ev_count() { [ "$(ev_count "$1")" -ge "$2" ]; }
qstatus() { qmp_cmd a query-status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["return"]["status"])'; }
# fsub A B: A - B in seconds (floats)
fsub() { "$PY" -c "print('%.3f' % ($1 - $2))"; }
fge() { "$PY" -c "import sys; sys.exit(0 if $1 >= $2 else 1)"; }
login() {   # OUTFILE [--hold S]
    local o=$1; shift
    "$PY" "$TOOLS/wakerfb.py" 127.0.0.1 "$PORT" "$CA" alice 'alice pw 95' "$@" >"$o" 2>&1
}
kv() { sed -n "s/^$1=//p" "$2" | tail -n 1; }

# 1. idle from the start
wait_for 8 has_ev_count STOP 1 || fail "no STOP event within 8 s of start (events: $(cat "$EV"))"
TS=$(ev_time STOP)
D=$(fsub "$TS" "$T0")
say "paused $D s after vmgate was started"
fge "$D" 1.9 || fail "paused after $D s: earlier than idle_pause = 2s"
fge 6 "$D" || fail "paused after $D s: far later than idle_pause = 2s"
[ "$(qstatus)" = paused ] || fail "query-status is $(qstatus) after the idle pause"
expect_log 'idle: vm a paused \(no session for 2s\)'
"$VMGATE" status --json -c "$T/vmgate.conf" >"$T/status.json" || fail "vmgate status --json failed"
grep -qE '"state": ?"paused by vmgate \(idle since 20[0-9-]+T[0-9:]+Z\)"' "$T/status.json" ||
    { cat "$T/status.json"; fail "status --json does not say paused by vmgate"; }
# the plain-text `vmgate vm a status` (root is in users) says so too
"$VMGATE" vm -c "$T/vmgate.conf" a status >"$T/vmstatus.out" 2>&1 ||
    { cat "$T/vmstatus.out"; fail "vmgate vm a status failed"; }
grep -qE '^a: paused - paused by vmgate \(idle since 20[0-9-]+T[0-9:]+Z\)$' "$T/vmstatus.out" ||
    { cat "$T/vmstatus.out"; fail "vmgate vm a status does not say 'paused by vmgate (idle since ...)'"; }
say "vmgate vm a status: $(head -n 1 "$T/vmstatus.out")"
wait_for 5 grep -q '"event":"power"' "$AUDIT" || fail "no power event in the audit trail"
grep '"event":"power"' "$AUDIT" | head -n 1 | grep -q '"action":"pause","result":"ok","by":"vmgate"' ||
    { cat "$AUDIT"; fail "the power event is not a pause by vmgate"; }
say "ok: idle from start: paused after $D s (status, log, audit)"

# 2. a login wakes it before ServerInit
login "$T/l1.out" --hold 1 || { cat "$T/l1.out"; fail "login to the paused VM got no frame"; }
TL=$("$PY" -c 'import time; print("%.6f" % time.time())')   # the viewer has left
TI=$(kv t_init "$T/l1.out")
wait_for 3 has_ev_count RESUME 1 || fail "no RESUME event after the login (events: $(cat "$EV"))"
TR=$(ev_time RESUME)
say "RESUME at $TR, ServerInit at $TI ($(fsub "$TI" "$TR") s later); login to first frame $(kv login_to_frame_ms "$T/l1.out") ms"
fge "$TI" "$TR" || fail "ServerInit ($TI) reached the client before the RESUME event ($TR)"
expect_log 'idle: vm a resumed \(login by alice\)'
wait_for 3 grep -q '"action":"resume","result":"ok","by":"vmgate"' "$AUDIT" ||
    { cat "$AUDIT"; fail "no resume power event in the audit trail"; }
say "ok: login resumed the VM before ServerInit; the session got a frame"

# 2b. after the wake, the guest agent got guest-set-time with the host's time
set_time_ns() { "$PY" -c '
import json, sys
ts = [m["arguments"]["time"] for m in map(json.loads, open(sys.argv[1]))
      if m.get("execute") == "guest-set-time"]
print(ts[-1] if ts else "")' "$QGA_LOG"; }
wait_for 5 test -n "$(set_time_ns)" || fail "no guest-set-time reached the guest agent after the wake ($(cat "$QGA_LOG"))"
NS=$(set_time_ns)
D=$("$PY" -c "import time; print('%.3f' % (time.time() - $NS / 1e9))")
say "guest-set-time time = $NS ($D s before now)"
fge "$D" -0.5 && fge 10 "$D" || fail "guest-set-time carries $NS, $D s off the host's clock"
[ "$(grep -c guest-set-time "$QGA_LOG")" = 1 ] || fail "guest-set-time sent more than once for one wake"
expect_log 'idle: vm a: guest clock set through the guest agent'
grep -q '"execute": "guest-sync-delimited"' "$QGA_LOG" || fail "no guest-sync-delimited before guest-set-time"
say "ok: the wake corrected the guest clock (guest-set-time through the agent)"

# 3. paused again 2 s after the viewer left
wait_for 8 has_ev_count STOP 2 || fail "not paused again after the viewer left (events: $(cat "$EV"))"
D=$(fsub "$(ev_time STOP)" "$TL")
say "paused again $D s after the viewer left"
fge "$D" 1.8 || fail "paused $D s after the session ended: earlier than idle_pause"
say "ok: paused again $D s after the last session"

# 3b. a login on the local socket (socket_dir, authorized by uid) wakes it too
"$PY" "$TOOLS/localrfb.py" login "unix:$T/run/a.vnc" >"$T/u.out" 2>&1
grep -q '^result=ok' "$T/u.out" || { cat "$T/u.out"; fail "local socket login failed"; }
wait_for 3 has_ev_count RESUME 2 || fail "a local-socket login did not resume the VM ($(cat "$EV"))"
expect_log 'idle: vm a resumed \(login by root\)'
wait_for 8 has_ev_count STOP 3 || fail "not paused again after the local session"
say "ok: a local-socket login wakes it too"

# 4. someone else's pause stays
qmp_cmd a cont >/dev/null || fail "cont through the test's monitor failed"
login "$T/l2.out" --hold 4 &
LP=$!
sleep 1.5
[ "$(qstatus)" = running ] || fail "VM not running during a session"
qmp_cmd a stop >/dev/null || fail "stop through the test's monitor failed"
wait "$LP" || { cat "$T/l2.out"; fail "session during the test's pause failed"; }
NR=$(ev_count RESUME)
expect_log 'idle: vm a: status is paused, not running: left alone' 8
[ "$(qstatus)" = paused ] || fail "query-status is $(qstatus): vmgate touched the test's pause"
login "$T/l3.out" --hold 0.5 || { cat "$T/l3.out"; fail "a login to a VM paused by someone else got no frame"; }
sleep 1
[ "$(ev_count RESUME)" = "$NR" ] || fail "vmgate resumed a VM the test had paused (events: $(cat "$EV"))"
[ "$(qstatus)" = paused ] || fail "query-status is $(qstatus) after a login: vmgate resumed the test's pause"
say "ok: a VM paused by someone else stays paused through a login, and the session gets a frame"
qmp_cmd a cont >/dev/null
stop_vmgate
