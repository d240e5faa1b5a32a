#!/bin/bash
# t97-web-bad-input: bad input on the browser console's port (issue 13) while a
# good browser-style session goes on.  A session logged in over wss:// the way
# noVNC 1.3 does it (tests/tools/wsbad.py hold) asks for a non-incremental
# update every 0.5 s throughout; meanwhile, each from a connection of its own:
#   a slowloris head (bytes trickled, never finished) closed by login_timeout,
#   and one on a kept-alive connection closed by the keep-alive wait (15 s);
#   a 10,000-byte header line: 431;  no Upgrade header, or Upgrade: h2c: 426;
#   Sec-WebSocket-Version 8: 426 naming 13;  a Sec-WebSocket-Key that is not
#   base64 of 16 bytes: 400;  after a good upgrade: an unmasked client frame
#   (close 1002), a text frame (1003), a 64-bit length of 2^63 (1002), one of
#   2^62 (1009, over the frame limit), RSV1 set (1002), a 126-byte ping (1002);
#   a ping flood on a logged-in session that never reads: closed with 1008, or
#   its pongs bounded (fewer than the pings) and the session still answering.
# Each case: the HTTP status or the close code, and the vmgate log line of that
# connection with its reason.  Afterwards the good session still gets a fresh
# update and closes cleanly (1000), and a new login works.
#
# Checklist style: every case is reported (ok / FAIL) and the tally decides.
. "$(dirname "$0")/lib.sh"
need_vmgate
"$PY" -c 'import websocket' 2>/dev/null || skip "python3-websocket is not installed"

make_certs
make_passwd alice 'web pw'
start_qemu d unix
WP=$(free_port)
LT=4        # login_timeout: what ends a head that never finishes
KA=15       # WEB_IDLE_S (proxy/web_conn.c): a kept-alive connection's wait for a request
N=$T/novnc  # a novnc_dir of one file, for the kept-alive connection's first request
mkdir -p "$N"
echo '<!DOCTYPE html><title>t97</title>' >"$N/vnc.html"
write_config "$T/vmgate.conf" web_port="$WP" login_timeout="${LT}s" novnc_dir="$N" -- \
    vm d vnc="${QEMU_BACKEND[d]}" users=alice
start_vmgate "$T/vmgate.conf" 0
expect_log "listening for the browser console \(web\) on 127.0.0.1:$WP"
wait_guest_stable d

HP=127.0.0.1:$WP
O=https://$HP
wsb() { "$PY" "$TOOLS/wsbad.py" "$@"; }
raw() { "$PY" "$TOOLS/wsrfb.py" raw "$HP" "$CA" "$1"; }

# --- the good session ------------------------------------------------------
HOLD=$T/hold.out
add_log "$HOLD"
"$PY" "$TOOLS/wsbad.py" hold "$HP" "$CA" "$O" d alice 'web pw' >"$HOLD" 2>&1 &
HOLD_PID=$!
track "$HOLD_PID"
wait_for 20 grep -q '^update 2 ' "$HOLD" || fail "the good session got no updates: $(cat "$HOLD")"
grep -qx "ok 720 400 QEMU (d)" "$HOLD" || fail "the good session: $(head -n 1 "$HOLD")"
say "good session: $(head -n 1 "$HOLD")"
updates() { grep -c '^update ' "$HOLD" || true; }

checklist

# good_goes_on WHAT: the good session is alive and got an update after WHAT
good_goes_on() {
    local n
    n=$(updates)
    if kill -0 "$HOLD_PID" 2>/dev/null && wait_for 5 eval "[ \$(grep -c '^update ' '$HOLD') -gt $n ]"; then
        ok "good session still updated after $1 ($(updates) updates)"
    else
        bad "good session stalled or ended after $1: $(tail -n 2 "$HOLD" | tr '\n' ' ')"
    fi
}

# The log lines since a mark: each case looks only at what came after it.
MARK=0
mark() { MARK=$(wc -l <"$VMGATE_LOG"); }
new_log() { tail -n +"$((MARK + 1))" "$VMGATE_LOG"; }
# logged WHAT ERE [SECONDS]: a vmgate log line matching ERE appeared since the mark
LPAT=
_new_log_has() { new_log | grep -Eq -- "$LPAT"; }
logged() {
    LPAT=$2
    if wait_for "${3:-5}" _new_log_has; then
        ok "$1: logged: $(new_log | grep -E -- "$2" | tail -n 1 | sed 's/^vmgate\[[0-9]*\] //')"
    else
        bad "$1: no vmgate log line matching: $2 (last new lines: $(new_log | tail -n 4 | tr '\n' '|'))"
    fi
}
# status WHAT WANT OUT: the answer's status line starts with "HTTP/1.1 WANT "
status() {
    local first=${3%%$'\n'*}
    first=${first%$'\r'}
    case $first in
    "HTTP/1.1 $2 "*) ok "$1: $first" ;;
    *) bad "$1: expected HTTP $2, got: $first" ;;
    esac
}
UPG="GET /vnc/d HTTP/1.1\r\nHost: $HP\r\nOrigin: $O\r\nConnection: Upgrade\r\n"
KEY='Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
V13='Sec-WebSocket-Version: 13\r\n'

# --- a slowloris head: a byte every 0.5 s, never ending ----------------------
# The same on a kept-alive connection (a file answered first) runs meanwhile:
# there no login_timeout runs but the keep-alive idle limit (KA).
wsb slow "$HP" "$CA" 0.5 kept >"$T/slow-kept.out" 2>&1 &
KEPT_PID=$!
track "$KEPT_PID"
mark
out=$(wsb slow "$HP" "$CA" 0.5)
say "slowloris: $out"
if [[ $out =~ ^closed\ after\ ([0-9]+)\.[0-9]s,.*answer:\ none$ ]] &&
    [ "${BASH_REMATCH[1]}" -ge $((LT - 1)) ] && [ "${BASH_REMATCH[1]}" -le $((LT + 2)) ]; then
    ok "slowloris head closed without an answer by login_timeout (${LT}s): $out"
else
    bad "slowloris head: expected a close after ~${LT}s (login_timeout), got: $out"
fi
logged "slowloris head" "conn=[0-9]+ vm=- via=web from=127\.0\.0\.1: login timeout \(${LT}s\) in state http-head"
good_goes_on "the slowloris head"

# --- HTTP: a 10,000-byte header line ------------------------------------------
mark
out=$(raw "GET /vnc.html HTTP/1.1\r\nHost: $HP\r\nX-Big: $(head -c 10000 /dev/zero | tr '\0' a)\r\n\r\n")
status "10,000-byte header line" 431 "$out"
logged "10,000-byte header line" "vm=- via=web from=127\.0\.0\.1: bad HTTP request \(431\): header line too long"

# --- the upgrade's headers ------------------------------------------------------
mark
out=$(raw "$UPG$KEY$V13\r\n")
status "no Upgrade header" 426 "$out"
grep -q "^Upgrade: websocket" <<<"$out" && ok "no Upgrade header: the 426 names Upgrade: websocket" ||
    bad "no Upgrade header: the 426 does not name Upgrade: websocket"
logged "no Upgrade header" "vm=- via=web from=127\.0\.0\.1: .*[Uu]pgrade"

mark
out=$(raw "${UPG}Upgrade: h2c\r\n$KEY$V13\r\n")
status "Upgrade: h2c" 426 "$out"
logged "Upgrade: h2c" "vm=- via=web from=127\.0\.0\.1: .*[Uu]pgrade"

mark
out=$(raw "${UPG}Upgrade: websocket\r\n${KEY}Sec-WebSocket-Version: 8\r\n\r\n")
status "Sec-WebSocket-Version: 8" 426 "$out"
grep -q "^Sec-WebSocket-Version: 13" <<<"$out" && ok "version 8: the 426 names version 13" ||
    bad "version 8: the 426 does not name Sec-WebSocket-Version: 13"
logged "Sec-WebSocket-Version: 8" "vm=- via=web from=127\.0\.0\.1: WebSocket version \"8\" refused"

for key in 'not base64 at all!!!!!==' 'dGhlIHNhbXBsZQ==' ''; do
    mark
    out=$(raw "${UPG}Upgrade: websocket\r\nSec-WebSocket-Key: $key\r\n$V13\r\n")
    status "Sec-WebSocket-Key '$key'" 400 "$out"
    # (an empty one is the HTTP parser's: "bad HTTP request (400): Sec-WebSocket-Key header empty")
    logged "Sec-WebSocket-Key '$key'" "vm=- via=web from=127\.0\.0\.1: bad (HTTP request \(400\): )?Sec-WebSocket-Key"
done
good_goes_on "the bad HTTP heads"

# --- frames after a good upgrade ---------------------------------------------------
# KIND CODE REASON (the reason as vmgate logs it: "viewer: WebSocket: REASON")
while read -r kind code reason; do
    mark
    out=$(wsb frame "$HP" "$CA" "$O" d "$kind" | tr '\n' ' ')
    if [[ $out == "close $code "*eof* ]]; then
        ok "$kind frame: close $code, then the stream ends"
    else
        bad "$kind frame: expected close $code and the end, got: $out"
    fi
    logged "$kind frame" "vm=d via=web from=127\.0\.0\.1: viewer: WebSocket: $reason"
done <<'EOF'
unmasked 1002 unmasked client frame
text 1003 text frame \(only binary is accepted\)
len63 1002 64-bit length with the top bit set
len62 1009 data frame too large
reserved 1002 reserved bits set
bigping 1002 fragmented or over-long control frame
EOF
good_goes_on "the bad frames"

# --- a ping flood on a logged-in session that never reads ------------------------
# 200,000 pings of 125 bytes (27 MB) sent without reading: the pongs must not
# pile up without bound in vmgate.  Either vmgate closes the flood (1008, a log
# line saying so) or it answers a bounded number of pongs and the session goes
# on.  Meanwhile the good session's updates must keep coming in time.
hwm() { sed -n 's/^VmHWM: *\([0-9]*\) kB/\1/p' "/proc/$VMGATE_PID/status"; }
hwm0=$(hwm)
mark
n0=$(updates)
t0=$(date +%s)
out=$(wsb pingflood "$HP" "$CA" "$O" d alice 'web pw' 200000 | tr '\n' ' ')
t1=$(date +%s)
say "ping flood: $out ($((t1 - t0))s)"
if [[ $out =~ ^sent\ ([0-9]+)\ pongs\ ([0-9]+)\ close\ ([0-9a-z]+)\ other ]]; then
    sent=${BASH_REMATCH[1]} pongs=${BASH_REMATCH[2]} code=${BASH_REMATCH[3]}
    case $code in
    1008)
        ok "ping flood: closed with 1008 after $sent pings ($pongs pongs)"
        logged "ping flood" "vm=d via=web user=alice from=127\.0\.0\.1: .*[Pp]ing"
        ;;
    none)
        if [ "$pongs" -lt "$sent" ] && [[ $out == *" alive"* ]]; then
            ok "ping flood: pongs bounded ($pongs for $sent pings), the session still answers"
        elif [ "$pongs" -lt "$sent" ] && [[ $out == *"read error [EOFError"* ]] &&
            new_log | grep -Eq "vm=d via=web user=alice from=127\.0\.0\.1: session ended: viewer: WebSocket: ping flood"; then
            # a peer that does not read cannot get the close frame: vmgate's
            # lingering close gives up on it and the peer reads the pongs
            # that fit in the socket, then EOF
            ok "ping flood: closed by vmgate with its reason in the log after $sent pings ($pongs pongs read, then EOF; the 1008 did not fit in a socket the flooder never read)"
        else
            bad "ping flood: not closed, and pongs not bounded or the session dead: $out"
        fi
        ;;
    *) bad "ping flood: closed with $code, expected 1008 (or no close and bounded pongs): $out" ;;
    esac
else
    bad "ping flood: unexpected outcome: $out"
fi
hwm1=$(hwm)
if [ $((hwm1 - hwm0)) -lt 16384 ]; then
    ok "vmgate's peak memory grew $(((hwm1 - hwm0) / 1024)) MB during the flood (limit 16)"
else
    bad "vmgate's peak memory grew $(((hwm1 - hwm0) / 1024)) MB during the flood: pongs piling up?"
fi
n1=$(updates)
# about two updates a second while the flood ran: at least half of them
if [ $((n1 - n0)) -ge $((t1 - t0 > 0 ? t1 - t0 : 1)) ]; then
    ok "good session: $((n1 - n0)) updates during the $((t1 - t0))s of the flood"
else
    bad "good session: only $((n1 - n0)) updates during the $((t1 - t0))s of the flood"
fi
slowest=$(tail -n +"$((n0 + 2))" "$HOLD" | sed -n 's/^update [0-9]* ms=//p' | sort -n | tail -n 1)
if [ -n "$slowest" ] && [ "$slowest" -lt 2000 ]; then
    ok "good session: slowest update during the flood ${slowest} ms"
else
    bad "good session: an update during the flood took ${slowest:-?} ms (limit 2000)"
fi
good_goes_on "the ping flood"

# --- the kept-alive slowloris, started with the first (KA s) -------------------
wait_for 30 _not_alive "$KEPT_PID" || true
out=$(cat "$T/slow-kept.out")
say "slowloris on a kept-alive connection: $out"
if [[ $out =~ ^closed\ after\ ([0-9]+)\.[0-9]s,.*answer:\ none$ ]] &&
    [ "${BASH_REMATCH[1]}" -ge $((KA - 1)) ] && [ "${BASH_REMATCH[1]}" -le $((KA + 2)) ]; then
    ok "slowloris head on a kept-alive connection closed without an answer after ${KA}s (keep-alive idle): $out"
else
    bad "slowloris head on a kept-alive connection: expected a close after ~${KA}s, got: $out"
fi
# (the other slowloris's line says "login timeout (4s)"; this one must say
# it was the keep-alive's wait, or its own 15 s)
MARK=0
logged "slowloris head on a kept-alive connection" \
    "vm=- via=web from=127\.0\.0\.1: .*(idle|keep-alive|kept|\(${KA}s\))" 1

# --- afterwards -------------------------------------------------------------------
if vmgate_alive; then ok "vmgate still running"; else bad "vmgate died"; fi
# the good session: one more fresh update (non-incremental), then a clean close
good_goes_on "everything"
kill -TERM "$HOLD_PID"
wait_for 10 _not_alive "$HOLD_PID" || true
last=$(tail -n 1 "$HOLD")
check "good session closes cleanly at the end" "closed 1000" "$last"
out=$("$PY" "$TOOLS/wsrfb.py" login "wss://$HP/vnc/d" "$CA" "$O" alice 'web pw')
check "a new login after all of it" "ok 720 400 QEMU (d)" "$out"
checks_done
