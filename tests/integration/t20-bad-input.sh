#!/bin/bash
# t20-bad-input: misbehaving clients (tests/tools/rawrfb.py), each its own case,
# each followed by proof that vmgate is alive and a real TigerVNC viewer still
# gets in.
# Phase A (login_timeout = 3s):
#   garbage instead of a version string      -> closed at once
#   RFB 3.3 client                           -> security type 0 (failure), closed
#   RFB 3.7 client                           -> offered [19]
#   security type 2 instead of 19            -> closed at once
#   VeNCrypt version 0.1                     -> closed at once
#   subtype 256 (Plain) instead of 262       -> no TLS ack, closed at once
#   username length 0xFFFFFFFF after TLS     -> closed at once (nothing allocated/awaited)
#   password length 0xFFFFFFFF after TLS     -> closed at once
#   silent after the version / inside TLS    -> closed at login_timeout (~3 s), "login timeout" logged
#   half a TLS ClientHello, then close       -> nothing else disturbed
#   half a TLS ClientHello, then stall       -> closed at login_timeout, "login timeout" logged
# Phase B (login_timeout = 60s, max_unauth = 64, max_unauth_per_source = 8):
#   200 connections from 127.0.0.2 that send their version, then nothing
#                                            -> 8 held, 192 refused, per-source log line,
#                                               and a viewer from 127.0.0.1 still gets in
#   200 more from 50 other addresses         -> the global cap holds (64 in all), log line;
#                                               they evict 127.0.0.2's (log line), and a new
#                                               client from 127.0.0.1 still gets in (t21)
#   all released                             -> the counters drop, a viewer gets in again
. "$(dirname "$0")/lib.sh"
need_vmgate

make_certs
make_passwd alice 'bad input pw'
start_qemu a qmp
PORT=$(free_port)
write_config "$T/a.conf" login_timeout=3s -- vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users=alice
start_vmgate "$T/a.conf"

proof() {   # a real viewer gets in, then leaves
    vmgate_alive || fail "vmgate died"
    local r
    vncviewer_start proof alice 'bad input pw' "$PORT" >/dev/null
    r=$(vncviewer_result proof)
    [ "$r" = connected ] || fail "case $CASE: afterwards a real viewer did not get in: $r"
    stop_viewer proof
    say "  ... and then a real viewer gets in"
}

raw() {   # OUTFILE ARGS... : run rawrfb, output to $T/case.N.OUTFILE
    local out=$T/case.$1
    shift
    "$PY" "$TOOLS/rawrfb.py" "$@" >"$out" 2>&1 || true
    add_log "$out"
    RAW=$out
}
has() { grep -Eqx -- "$1" "$RAW" || { cat "$RAW"; fail "case $CASE: expected a line '$1'"; }; }
hasnt() { grep -Eqx -- "$1" "$RAW" && { cat "$RAW"; fail "case $CASE: unexpected line '$1'"; }; true; }
val() { sed -n "s/^$1=//p" "$RAW" | tail -n 1; }
closed_quickly() {   # closed, and well before login_timeout
    has 'closed=yes'
    local e
    e=$(val elapsed)
    [ -z "$e" ] || "$PY" -c "import sys; sys.exit(0 if float('$e') < 2.5 else 1)" ||
        { cat "$RAW"; fail "case $CASE: closed only after ${e}s (expected at once)"; }
    local r
    r=$(val reason)
    say "  closed after ${e:-?}s; answer: $(val answer | cut -c1-24)${r:+ (reason \"$r\")}"
}
closed_at_timeout() {   # closed after about login_timeout=3s, with a log line
    local e before=$1
    has 'closed=yes'
    e=$(val elapsed)
    "$PY" -c "import sys; sys.exit(0 if 2.5 <= float('${e:-0}') <= 7 else 1)" ||
        { cat "$RAW"; fail "case $CASE: closed after ${e:-?}s, expected about 3 s (login_timeout)"; }
    wait_for 5 eval '[ "$(grep -c "login timeout" "$VMGATE_LOG")" -gt '"$before"' ]' ||
        fail "case $CASE: no 'login timeout' line in vmgate's log"
    say "  closed after ${e}s: $(grep 'login timeout' "$VMGATE_LOG" | tail -n 1 | sed 's/^.*conn=/conn=/')"
}
timeouts() { grep -c 'login timeout' "$VMGATE_LOG" || true; }

CASE=garbage; say "case $CASE"
raw garbage --timeout 10 garbage 127.0.0.1 "$PORT"
closed_quickly
proof

CASE=rfb3.3; say "case $CASE"
raw v33 --timeout 10 oldver 127.0.0.1 "$PORT" 003.003
has 'answer=00000000.*'
has 'closed=yes'
proof

CASE=rfb3.7; say "case $CASE"
raw v37 --timeout 2 oldver 127.0.0.1 "$PORT" 003.007
has 'answer=0113'
proof

CASE=sectype2; say "case $CASE"
raw sectype --timeout 10 sectype 127.0.0.1 "$PORT" 2
has 'sectypes=19'
closed_quickly
proof

CASE=vencrypt0.1; say "case $CASE"
raw vencver --timeout 10 vencver 127.0.0.1 "$PORT" 0 1
closed_quickly
proof

CASE=subtype256; say "case $CASE"
raw subtype --timeout 10 subtype 127.0.0.1 "$PORT" 256
has 'subtypes=262'
hasnt 'answer=01.*'
closed_quickly
proof

CASE=username-4GiB; say "case $CASE"
raw hugeuser --timeout 10 hugeuser 127.0.0.1 "$PORT" "$CA" 0xFFFFFFFF 8
has 'tls=TLSv1\.[23]'
closed_quickly
hasnt 'answer=00000000.*'
proof

CASE=password-4GiB; say "case $CASE"
raw hugepass --timeout 10 hugeuser 127.0.0.1 "$PORT" "$CA" 5 0xFFFFFFFF
closed_quickly
hasnt 'answer=00000000.*'
proof

CASE=silent-after-version; say "case $CASE"
b=$(timeouts)
raw silent1 --timeout 20 silent 127.0.0.1 "$PORT" version
closed_at_timeout "$b"
proof

CASE=silent-in-tls; say "case $CASE"
b=$(timeouts)
raw silent2 --timeout 20 silent 127.0.0.1 "$PORT" tls "$CA"
has 'tls=TLSv1\.[23]'
closed_at_timeout "$b"
proof

CASE=tls-half-then-close; say "case $CASE"
raw tlshalf --timeout 10 tlshalf 127.0.0.1 "$PORT"
has 'subtype_ack=1'
has 'closed_by=client'
sleep 0.5
proof

CASE=tls-half-then-stall; say "case $CASE"
b=$(timeouts)
raw tlsstall --timeout 20 tlsstall 127.0.0.1 "$PORT"
closed_at_timeout "$b"
proof
expect_log "conn=[0-9]+ .*login timeout"

# ------------------------------------------------------------------ caps
stop_vmgate
write_config "$T/b.conf" login_timeout=60s max_unauth=64 max_unauth_per_source=8 -- \
    vm a vnc="${QEMU_BACKEND[a]}" vnc_port="$PORT" users=alice
start_vmgate "$T/b.conf"

idle() {   # NAME SOURCES : 200 silent connections, held open in the background
    "$PY" "$TOOLS/rawrfb.py" idle 127.0.0.1 "$PORT" 200 --speak --source "$2" --hold 240 >"$T/idle.$1" 2>&1 &
    track $!
    IDLE_PID[$1]=$!
    add_log "$T/idle.$1"
    wait_for 60 grep -q '^ready' "$T/idle.$1" || fail "idle clients $1 never got ready"
    RAW=$T/idle.$1
}
declare -A IDLE_PID=()

CASE=200-idle-one-source; say "case $CASE"
idle one 127.0.0.2
has 'connected=200'
has 'held=8'
has 'refused=192'
expect_log "refused connection from 127\.0\.0\.2.*too many unauthenticated connections \(per-source limit 8\)"
kill -0 "${IDLE_PID[one]}" || fail "idle clients exited early"
proof
kill -0 "${IDLE_PID[one]}" || fail "idle clients gone"

CASE=200-idle-many-sources; say "case $CASE"
srcs=$(for i in $(seq 1 50); do printf '127.0.1.%d,' "$i"; done)
idle many "${srcs%,}"
has 'connected=200'
held=$(val held) refused=$(val refused)
[ $((held + refused)) -eq 200 ] && [ "$held" -ge 56 ] && [ "$held" -le 64 ] ||
    { cat "$RAW"; fail "case $CASE: held=$held refused=$refused"; }
expect_log "evicted conn=[0-9]+ from=127\.0\.0\.2 in state security-type: its source 127\.0\.0\.2 held 8 of 64 unauthenticated connections; admitting one from 127\.0\.1\.[0-9]+"
expect_log "refused connection from 127\.0\.1\.[0-9]+.*too many unauthenticated connections \(global limit 64\)"
say "  the global cap holds; 127.0.0.2 gave up slots to the 50 sources ($held of them held, $refused refused)"
raw capped --timeout 5 version 127.0.0.1 "$PORT"
has "version='RFB 003.008.*"
say "  a new client from a source holding nothing still gets in while 64 are held (evicting one)"

CASE=idle-released; say "case $CASE"
kill "${IDLE_PID[one]}" "${IDLE_PID[many]}"
sleep 1
proof
raw after --timeout 5 version 127.0.0.1 "$PORT"
has "version='RFB 003.008.*"
