#!/bin/bash
# t96-idle-two-vms: wake on connect with two VMs (a: idle_pause = 3s, b: 2s),
# each QEMU with three monitors (vmgate's, the test's, an event watcher),
# processes = 2 (the helper sums the session counts of both network processes).
#  1. A login while vmgate is pausing a: the test holds a's vmgate monitor
#     (QEMU serves one client per monitor), so vmgate's check before the
#     pause waits there; a login for a comes meanwhile.  Its answer waits
#     for the check, the VM is not paused at all (no STOP event before the
#     session ends) and the session gets its frame once the monitor is free.
#  2. Meanwhile b, which nobody opened, is paused 2 s after the start:
#     a's stuck monitor does not hold b up.
#  3. After a's viewer leaves, a is paused; a login for b resumes b only
#     (RESUME on b, none on a, a still paused).
#  4. Two sessions of b at once: not paused when one leaves, paused after
#     the last one.
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'alice pw 96'
for v in a b; do
    start_qemu "$v" unix -qmp "unix:$T/$v.qmp,server=on,wait=off" -qmp "unix:$T/$v.ev,server=on,wait=off"
    : >"$T/$v.events"
    "$PY" "$TOOLS/qmpwatch.py" watch "$T/$v.ev" "$T/$v.events" &
    track $!
done
PA=$(free_port)
PB=$(free_port)
write_config "$T/vmgate.conf" processes=2 -- \
    vm a vnc="${QEMU_BACKEND[a]}" qmp="$T/a.qmp" vnc_port="$PA" users=alice idle_pause=3s \
    vm b vnc="${QEMU_BACKEND[b]}" qmp="$T/b.qmp" vnc_port="$PB" users=alice idle_pause=2s

ev_count() { awk -v e="$2" '$2 == e { n++ } END { print n + 0 }' "$T/$1.events"; }
has_ev() { [ "$(ev_count "$1" "$2")" -ge "$3" ]; }
qstatus() { qmp_cmd "$1" query-status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["return"]["status"])'; }
kv() { sed -n "s/^$1=//p" "$2" | tail -n 1; }
fsub() { "$PY" -c "print('%.3f' % ($1 - $2))"; }
fge() { "$PY" -c "import sys; sys.exit(0 if $1 >= $2 else 1)"; }

# hold a's vmgate monitor from before the start until ~5.5 s after it
"$PY" "$TOOLS/qmpwatch.py" hold "$T/a.qmp" 6 >"$T/hold.out" 2>&1 &
HP=$!
track $HP
wait_for 5 grep -q held "$T/hold.out" || fail "could not take a's monitor"
start_vmgate "$T/vmgate.conf"
sleep 3.6     # a's check (due 3 s after the start) now waits for the monitor
"$PY" "$TOOLS/wakerfb.py" 127.0.0.1 "$PA" "$CA" alice 'alice pw 96' --hold 1 >"$T/la.out" 2>&1 ||
    { cat "$T/la.out"; fail "the login during a's pause got no frame"; }
WAITED=$(fsub "$(kv t_result "$T/la.out")" "$(kv t_connect "$T/la.out")")
say "login during the pause: answered after $WAITED s, first frame after $(kv login_to_frame_ms "$T/la.out") ms"
fge "$WAITED" 0.8 || fail "the login was answered after $WAITED s: it did not wait for the pause in flight"
[ "$(ev_count a STOP)" = 0 ] || fail "a was paused although a login came during the check ($(cat "$T/a.events"))"
[ "$(ev_count a RESUME)" = 0 ] || fail "a got a RESUME without having been paused"
say "ok: a login during the pause's check: the answer waited, a was never paused"

# 2. b was paused meanwhile, on its own
has_ev b STOP 1 || fail "b (nobody opened it) was not paused while a's monitor was held ($(cat "$T/b.events"))"
[ "$(qstatus b)" = paused ] || fail "b is $(qstatus b), expected paused"
say "ok: b paused on its own while a's monitor was busy"

# 3. a pauses after its viewer left; b's login wakes b only
wait_for 8 has_ev a STOP 1 || fail "a not paused after its viewer left ($(cat "$T/a.events"))"
[ "$(qstatus a)" = paused ] || fail "a is $(qstatus a), expected paused"
"$PY" "$TOOLS/wakerfb.py" 127.0.0.1 "$PB" "$CA" alice 'alice pw 96' >"$T/lb.out" 2>&1 ||
    { cat "$T/lb.out"; fail "login to b got no frame"; }
wait_for 3 has_ev b RESUME 1 || fail "b not resumed by its login ($(cat "$T/b.events"))"
sleep 0.5
[ "$(ev_count a RESUME)" = 0 ] || fail "a login for b resumed a ($(cat "$T/a.events"))"
[ "$(qstatus a)" = paused ] || fail "a is $(qstatus a) after b's login, expected paused"
expect_log 'idle: vm b resumed \(login by alice\)'
log_has 'idle: vm a resumed' && fail "the log says a was resumed"
say "ok: b's login resumed b only"

# 4. two sessions of b at once (either network process may take each): b
#    is not paused while one of them is left (first let the pause after
#    step 3's session happen: both logins then wake it)
wait_for 6 has_ev b STOP 2 || fail "b not paused after step 3's session"
NS=$(ev_count b STOP)
"$PY" "$TOOLS/wakerfb.py" 127.0.0.1 "$PB" "$CA" alice 'alice pw 96' --hold 6 >"$T/lb2.out" 2>&1 &
LONG=$!
"$PY" "$TOOLS/wakerfb.py" 127.0.0.1 "$PB" "$CA" alice 'alice pw 96' --hold 1 >"$T/lb3.out" 2>&1 ||
    { cat "$T/lb3.out"; fail "second session of b failed"; }
sleep 3.5     # past idle_pause since the short session left
[ "$(ev_count b STOP)" = "$NS" ] || fail "b was paused while a session of it was still open"
[ "$(qstatus b)" = running ] || fail "b is $(qstatus b) with a session open"
wait "$LONG" || { cat "$T/lb2.out"; fail "the long session of b failed"; }
wait_for 6 has_ev b STOP $((NS + 1)) || fail "b not paused after its last session left"
say "ok: b stays running while any of its sessions is open, paused after the last"
stop_vmgate
