#!/bin/bash
# t21-flood: a few sources holding every unauthenticated slot cannot lock the
# real users out.
# Phase A (login_timeout = 60s, max_unauth = 64, max_unauth_per_source = 8):
#   8 x 8 connections from 127.0.1.1..8 that send their RFB version and
#   then nothing (past any first-byte limit): all 64 held; then a real
#   TigerVNC viewer from 127.0.0.1 still gets in (before the fix: refused,
#   "global limit 64"), because its connection evicts the oldest idle one of
#   a biggest holder, with an "evicted conn=..." line; the client side sees
#   exactly that one closed, the other 63 still held.
# Phase B (first_byte_timeout = 2s, login_timeout = 5s):
#   a connection that sends nothing    -> closed after ~2 s, "no data from the
#                                         viewer within 2s (first_byte_timeout)"
#   one that sends its version, then nothing -> still closed only at
#                                         login_timeout (~5 s), "login timeout"
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'flood pw'
start_qemu a unix
PORT=$(free_port)

raw() {   # OUTFILE ARGS... : run rawrfb, output to $T/case.OUTFILE
    local out=$T/case.$1
    shift
    "$PY" "$TOOLS/rawrfb.py" "$@" >"$out" 2>&1 || true
    add_log "$out"
    RAW=$out
}
has() { grep -Eqx -- "$1" "$RAW" || { cat "$RAW"; fail "$CASE: expected a line '$1'"; }; }
val() { sed -n "s/^$1=//p" "$RAW" | tail -n 1; }
between() {   # VALUE LO HI
    "$PY" -c "import sys; sys.exit(0 if $2 <= float('${1:-0}') <= $3 else 1)"
}

# ------------------------------------------------------------------ phase A
write_config "$T/a.conf" login_timeout=60s max_unauth=64 max_unauth_per_source=8 -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users=alice
start_vmgate "$T/a.conf"

CASE=flood
srcs=$(for i in $(seq 1 8); do printf '127.0.1.%d,' "$i"; done)
"$PY" "$TOOLS/rawrfb.py" idle 127.0.0.1 "$PORT" 64 --speak --source "${srcs%,}" --hold 15 \
    >"$T/idle.flood" 2>&1 &
IDLE=$!
track "$IDLE"
add_log "$T/idle.flood"
wait_for 60 grep -q '^ready' "$T/idle.flood" || fail "idle clients never got ready"
RAW=$T/idle.flood
has 'connected=64'
has 'held=64'
has 'refused=0'
say "64 idle connections from 8 sources hold every unauthenticated slot"

vncviewer_start flood alice 'flood pw' "$PORT" >/dev/null
r=$(vncviewer_result flood)
[ "$r" = connected ] || fail "$CASE: a real viewer did not get in while 8 sources held every slot: $r"
say "a real viewer from 127.0.0.1 still gets in"
expect_log "evicted conn=[0-9]+ from=127\.0\.1\.[1-8] in state security-type: its source 127\.0\.1\.[1-8] held 8 of 64 unauthenticated connections; admitting one from 127\.0\.0\.1"
expect_log "conn=[0-9]+ vm=a user=alice from=127\.0\.0\.1: session started"
stop_viewer flood
n=$(grep -c 'evicted conn=' "$VMGATE_LOG" || true)
[ "$n" -eq 1 ] || fail "$CASE: expected exactly one eviction line, got $n"
wait_for 40 grep -q '^closed_later=' "$T/idle.flood" || fail "idle clients did not finish"
has 'closed_later=1'
say "exactly one idle connection was evicted, the other 63 stayed: $(grep 'evicted conn=' "$VMGATE_LOG" | sed 's/^.*evicted/evicted/')"
vmgate_alive || fail "vmgate died"
stop_vmgate

# ------------------------------------------------------------------ phase B
write_config "$T/b.conf" login_timeout=5s first_byte_timeout=2s -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users=alice
start_vmgate "$T/b.conf"

CASE=first-byte
raw nothing --timeout 20 silent 127.0.0.1 "$PORT" nothing
has 'closed=yes'
e=$(val elapsed)
between "$e" 1.5 4 || { cat "$RAW"; fail "$CASE: silent connection closed after ${e:-?}s, expected ~2 s"; }
expect_log "conn=[0-9]+ vm=a from=127\.0\.0\.1: closed: no data from the viewer within 2s \(first_byte_timeout\)"
say "a connection that sends nothing is closed after ${e}s: $(grep 'first_byte_timeout' "$VMGATE_LOG" | tail -n 1 | sed 's/^.*conn=/conn=/')"

CASE=spoke-then-silent
raw version --timeout 20 silent 127.0.0.1 "$PORT" version
has 'closed=yes'
e=$(val elapsed)
between "$e" 4.5 8 || { cat "$RAW"; fail "$CASE: closed after ${e:-?}s, expected ~5 s (login_timeout)"; }
expect_log "conn=[0-9]+ vm=a from=127\.0\.0\.1: login timeout \(5s\) in state security-type"
say "one that sent its version is closed at login_timeout, after ${e}s"

vncviewer_start after alice 'flood pw' "$PORT" >/dev/null
r=$(vncviewer_result after)
[ "$r" = connected ] || fail "a real viewer did not get in with first_byte_timeout = 2s: $r"
stop_viewer after
say "a real viewer gets in with first_byte_timeout = 2s"
stop_vmgate
